// Health, in two questions (README, "Health"):
// - GET /healthz: can THIS instance serve? Its own checks only (its database connection, its
//   listeners): 200 `ok`, 503 `unhealthy`. HAProxy and the container probe ask it, so a shared
//   dependency being down (the same for every instance) never takes every instance out of rotation:
//   the parts of the box that do not need that dependency keep answering.
// - GET /healthz/dependencies: can the box do its whole job? The instance's checks and every
//   dependency (the PACS, the DMP, Pro Santé Connect, the signed allow-list… each added by the plugin
//   that owns it) as ok, degraded or down: 200 when every essential one is ok, 503 otherwise.
// Both answer `{ status, checks: [...] }`; `status` is "ok" when all is well.
import type { FastifyInstance, FastifyReply } from 'fastify';

export type HealthState = 'ok' | 'degraded' | 'down';

export interface HealthCheck {
  name: string;
  /** resolves with optional detail when healthy; throws (or returns { ok:false }) when down; { ok:false, state:'degraded' } when impaired */
  run(signal: AbortSignal): Promise<{ ok: boolean; state?: HealthState; detail?: string } | void>;
  /** 'critical' (default): an essential dependency, anything but ok answers 503; 'warning': reported only */
  severity?: 'critical' | 'warning';
  /** 'dependency' (default): shared by every instance, reported by /healthz/dependencies;
   *  'instance': this process's own ability to serve, decides /healthz */
  scope?: 'instance' | 'dependency';
}

/** A dependency the box needs but has no configuration for: down, saying so. */
export const notConfigured = (name: string, detail: string, severity: HealthCheck['severity'] = 'critical'): HealthCheck =>
  ({ name, severity, run: async () => ({ ok: false, state: severity === 'critical' ? 'down' : 'degraded', detail: `not configured: ${detail}` }) });

export function healthRoute(app: FastifyInstance, checks: HealthCheck[], timeoutMs = 3000): void {
  const own = () => checks.filter((c) => c.scope === 'instance');
  app.get('/healthz', async (_req, reply) => answer(reply, await runChecks(own(), timeoutMs)));
  app.get('/healthz/dependencies', async (_req, reply) =>
    answer(reply, await runChecks([...checks.filter((c) => c.scope !== 'instance'), ...own()], timeoutMs)));
}

type CheckResult = Awaited<ReturnType<typeof runChecks>>[number];

function answer(reply: FastifyReply, results: CheckResult[]) {
  const healthy = results.every((r) => r.ok || !r.essential);
  const status = healthy ? (results.every((r) => r.ok) ? 'ok' : 'degraded') : 'unhealthy';
  return reply.code(healthy ? 200 : 503).header('cache-control', 'no-store').send({ status, checks: results });
}

function runChecks(checks: HealthCheck[], timeoutMs: number) {
  return Promise.all(
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
}
