// Which plugins a box runs, from its configuration: the trust layer and DMP client first (they
// provide services), then the roles it plays.
import type { DrimboxConfig } from './config/schema.js';
import type { RolePlugin } from './box.js';
import { trustLayer } from './trust/layer.js';
import { dmpService } from './dmp/service.js';
import { sourceRole } from './source/role.js';
import { consumerRole } from './consumer/role.js';

export function pluginsFor(config: DrimboxConfig): RolePlugin[] {
  return [
    trustLayer,
    dmpService,
    ...(config.roles.includes('source') ? [sourceRole] : []),
    ...(config.roles.includes('consumer') ? [consumerRole] : []),
  ];
}
