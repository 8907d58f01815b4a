// /healthz: can the box do its job? Every dependency reports ok, degraded or down: the PACS, the DMP,
// Pro Santé Connect, the signed allow-list (each added by the plugin that owns it). 200 when every
// essential dependency is ok, 503 otherwise (README, "Health"). `status` stays "ok" when all is well.
import type { FastifyInstance } from 'fastify';

export type HealthState = 'ok' | 'degraded' | 'down';

export interface HealthCheck {
  name: string;
  /** resolves with optional detail when healthy; throws (or returns { ok:false }) when down; { ok:false, state:'degraded' } when impaired */
  run(signal: AbortSignal): Promise<{ ok: boolean; state?: HealthState; detail?: string } | void>;
  /** 'critical' (default): an essential dependency, anything but ok answers 503; 'warning': reported only */
  severity?: 'critical' | 'warning';
}

/** A dependency the box needs but has no configuration for: down, saying so. */
export const notConfigured = (name: string, detail: string, severity: HealthCheck['severity'] = 'critical'): HealthCheck =>
  ({ name, severity, run: async () => ({ ok: false, state: severity === 'critical' ? 'down' : 'degraded', detail: `not configured: ${detail}` }) });

export function healthRoute(app: FastifyInstance, checks: HealthCheck[], timeoutMs = 3000): void {
  app.get('/healthz', async (_req, reply) => {
    const results = await Promise.all(
      checks.map(async (c) => {
        const started = performance.now();
        const signal = AbortSignal.timeout(timeoutMs);
        const severity = c.severity ?? 'critical';
        const done = (ok: boolean, state: HealthState, detail?: string) =>
          ({ name: c.name, ok, state, essential: severity === 'critical', severity, ms: Math.round(performance.now() - started), detail });
        try {
          const r = await Promise.race([
            c.run(signal),
            new Promise<never>((_, rej) => signal.addEventListener('abort', () => rej(new Error(`no answer within ${timeoutMs} ms`)))),
          ]);
          const ok = r ? r.ok : true;
          return done(ok, ok ? 'ok' : (r?.state ?? 'down'), r?.detail);
        } catch (e) {
          return done(false, 'down', (e as Error).message);
        }
      }),
    );
    const healthy = results.every((r) => r.ok || !r.essential);
    const status = healthy ? (results.every((r) => r.ok) ? 'ok' : 'degraded') : 'unhealthy';
    return reply.code(healthy ? 200 : 503).header('cache-control', 'no-store').send({ status, checks: results });
  });
}
