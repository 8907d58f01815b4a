// /healthz: is the box able to do its job? PACS reachable (C-ECHO or a cheap QIDO), plus whatever
// other components register (allow-list freshness, DMP, …). 200 when all are ok, 503 otherwise.
import type { FastifyInstance } from 'fastify';

export interface HealthCheck {
  name: string;
  /** resolves with optional detail when healthy; throws (or returns { ok:false }) when not */
  run(signal: AbortSignal): Promise<{ ok: boolean; detail?: string } | void>;
  /** a failing warning check reports but does not turn the box unhealthy */
  severity?: 'critical' | 'warning';
}

export function healthRoute(app: FastifyInstance, checks: HealthCheck[], timeoutMs = 3000): void {
  app.get('/healthz', async (_req, reply) => {
    const results = await Promise.all(
      checks.map(async (c) => {
        const started = performance.now();
        const signal = AbortSignal.timeout(timeoutMs);
        try {
          const r = await Promise.race([
            c.run(signal),
            new Promise<never>((_, rej) => signal.addEventListener('abort', () => rej(new Error(`no answer within ${timeoutMs} ms`)))),
          ]);
          const ok = r ? r.ok : true;
          return { name: c.name, ok, severity: c.severity ?? 'critical', ms: Math.round(performance.now() - started), detail: r?.detail };
        } catch (e) {
          return { name: c.name, ok: false, severity: c.severity ?? 'critical', ms: Math.round(performance.now() - started), detail: (e as Error).message };
        }
      }),
    );
    const healthy = results.every((r) => r.ok || r.severity === 'warning');
    const status = healthy ? (results.every((r) => r.ok) ? 'ok' : 'degraded') : 'unhealthy';
    return reply.code(healthy ? 200 : 503).send({ status, checks: results });
  });
}
