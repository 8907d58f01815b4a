// Admin routes of the trust layer on the user listener (`Authorization: Bearer <admin.token>`): the
// allow-list and revocation lists in use, and "refresh now" so that an operator who revoked a box at
// the registry (or a certificate at the CA) need not wait for the next periodic refresh.
import type { FastifyInstance } from 'fastify';
import { HttpProblem } from '../http/problem.js';
import { adminCheck } from '../source/admin.js';
import type { AllowListClient } from './allowlist-client.js';
import type { CrlStore } from './crl.js';
import type { AuditLog } from '../store/audit.js';

export interface TrustAdminOptions {
  token: string;
  allowList?: AllowListClient;
  crl?: CrlStore;
  audit: AuditLog;
  /** closes the connections of peers no longer trusted; how many */
  dropUntrusted: () => number;
}

export function trustAdminRoutes(app: FastifyInstance, o: TrustAdminOptions): void {
  const check = adminCheck(o.token);
  const state = () => ({
    allowList: o.allowList ? { ...o.allowList.status(), entries: o.allowList.entries().map((e) => ({ id: e.id, name: e.name, db: e.boxHost, dn: e.operatorDn })) } : undefined,
    revocation: o.crl?.enabled ? o.crl.status() : undefined,
  });

  app.get('/admin/allowlist', async (req) => {
    check(req);
    return state();
  });

  app.post('/admin/allowlist/refresh', async (req) => {
    check(req);
    if (!o.allowList && !o.crl?.enabled) throw new HttpProblem(409, 'Nothing to refresh', 'this box has neither a signed allow-list nor revocation lists configured');
    const started = Date.now();
    const [list, crl] = await Promise.all([o.allowList?.refresh(), o.crl?.enabled ? o.crl.refresh() : undefined]);
    // the update events already dropped newly untrusted peers; this catches any left
    const dropped = o.dropUntrusted();
    const failed = list === false || crl === false;
    o.audit.record({
      direction: 'admin', route: '/admin/allowlist/refresh', method: 'POST', status: failed ? 502 : 200,
      outcome: failed ? [o.allowList?.status().lastError, ...(o.crl?.status().errors ?? [])].filter(Boolean).join('; ').slice(0, 300) : `refreshed; ${dropped} connection(s) dropped`,
      durationMs: Date.now() - started,
    });
    if (failed) {
      throw new HttpProblem(502, 'Refresh failed', o.allowList?.status().lastError ?? o.crl?.status().errors.join('; ') ?? 'refresh failed; the last good lists stay in use', state());
    }
    return { refreshed: true, ...state() };
  });
}
