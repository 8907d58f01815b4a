// Health checks for the box's remote dependencies: is each one answering at all? (Any HTTP answer
// counts: the check proves the network path, TLS and the server, not a business request.)
import { Agent, request } from 'undici';
import type { HealthCheck } from './health.js';

/** The DMP registry endpoint over the box's mutual TLS. */
export function dmpHealthCheck(registryUrl: string, tls: { cert: string; key: string; ca: string }): HealthCheck & { close(): Promise<void> } {
  const agent = new Agent({ connect: { ...tls }, connections: 1 });
  return {
    name: 'dmp',
    async run(signal) {
      const r = await request(registryUrl, { method: 'GET', dispatcher: agent, signal });
      await r.body.dump();
      return { ok: true, detail: `registry answered HTTP ${r.statusCode}` };
    },
    close: () => agent.close(),
  };
}

/** Pro Santé Connect's discovery document (what login, refresh, logout and introspection all start from). */
export function pscHealthCheck(issuer: string, fetchImpl: typeof fetch = fetch): HealthCheck {
  return {
    name: 'psc',
    async run(signal) {
      const res = await fetchImpl(`${issuer}/.well-known/openid-configuration`, { signal });
      if (!res.ok) return { ok: false, detail: `discovery HTTP ${res.status}` };
      const meta = (await res.json()) as { issuer?: string };
      return meta.issuer === issuer ? { ok: true, detail: 'discovery ok' } : { ok: false, detail: 'discovery names another issuer' };
    },
  };
}
