// Builds the box's DMP client from its configuration (when it has a `dmp` section). The box
// authenticates to the DMP with its peer certificate, which also signs the VIHF assertion.
import { readFileSync } from 'node:fs';
import type { RolePlugin } from '../box.js';
import { DmpClient } from './client.js';
import { notConfigured } from '../http/health.js';
import { dmpHealthCheck } from '../http/dependency-checks.js';

export const dmpService: RolePlugin = async (ctx) => {
  const d = ctx.config.dmp;
  if (!d) {
    ctx.healthChecks.push(notConfigured('dmp', 'nothing can be published or searched'));
    return;
  }
  const cert = readFileSync(ctx.config.peer.tls.cert, 'utf8');
  const key = readFileSync(ctx.config.peer.tls.key, 'utf8');
  const client = new DmpClient({
    endpoints: { registry: d.registryUrl, repository: d.repositoryUrl },
    tls: { cert, key, ca: readFileSync(d.ca, 'utf8') },
    vihf: {
      signingCert: cert,
      signingKey: key,
      finess: d.finess,
      lpsName: d.lpsName,
      lpsVersion: d.lpsVersion,
      lpsHomologationId: d.lpsHomologationId,
      sector: { code: 'SA07', codeSystem: '1.2.250.1.71.4.2.4', displayName: 'Cabinet individuel' },
    },
    submitter: { sourceId: d.sourceId, uidRoot: ctx.config.box.uidRoot === '2.25' ? undefined : ctx.config.box.uidRoot },
    timeoutMs: d.timeoutMs,
  });
  ctx.services.dmp = client;
  ctx.onClose(() => client.close());
  const health = dmpHealthCheck(d.registryUrl, { cert, key, ca: readFileSync(d.ca, 'utf8') });
  ctx.healthChecks.push(health);
  ctx.onClose(() => health.close());
};
