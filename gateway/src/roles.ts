// Which plugins a box runs, from its configuration: the trust layer and DMP client first (they
// provide services), then the roles it plays.
import type { DrimboxConfig } from './config/schema.js';
import type { RolePlugin } from './box.js';
import { trustLayer } from './trust/layer.js';
import { dmpService } from './dmp/service.js';
import { createSourceRole, type SourceRoleOptions } from './source/role.js';
import { createConsumerRole, type ConsumerRoleOptions } from './consumer/role.js';

export interface RoleOptions {
  source?: SourceRoleOptions;
  consumer?: ConsumerRoleOptions;
}

export function pluginsFor(config: DrimboxConfig, opts: RoleOptions = {}): RolePlugin[] {
  return [
    trustLayer,
    dmpService,
    ...(config.roles.includes('source') ? [createSourceRole(opts.source)] : []),
    ...(config.roles.includes('consumer') ? [createConsumerRole(opts.consumer)] : []),
  ];
}
