// RFC 7662 token introspection at PSC, for the peer API: a consumer box sends the clinician's PSC
// access token as Bearer; the source box asks PSC whether it is live and whose it is. Answers are
// cached briefly (never past the token's exp) under a hash of the token, so the token itself is
// not kept in memory as a key.
import { createHash } from 'node:crypto';
import { nationalIdFromClaims, rppsFromNationalId } from './psc-claims.js';

export interface TokenIntrospectorOptions {
  introspectionEndpoint?: string; // else discovered from issuer
  issuer?: string;
  clientId: string;
  clientSecret: string;
  /**
   * When set, the token must be meant for this audience: its `aud` must contain it, or, for a
   * token without `aud`, its `client_id` must equal it. Otherwise → inactive ('wrong-audience').
   */
  expectedAudience?: string;
  cacheTtlMs?: number; // default 60 000; 0 disables the cache
  maxCacheEntries?: number; // default 1000
  timeoutMs?: number; // per HTTP call, default 5000
  now?: () => number; // for tests
  fetch?: typeof fetch; // e.g. undici's fetch with an Agent trusting a private CA
}

export interface ActiveToken {
  active: true;
  rpps: string;
  sub: string;
  name?: string;
  exp: number; // epoch seconds
  scope: string;
  clientId: string;
  aud?: string | string[];
}

export type InactiveReason =
  | 'inactive' // PSC says active:false (unknown, revoked, expired at PSC, garbage)
  | 'expired' // PSC said active but exp is past
  | 'wrong-audience'
  | 'no-rpps' // the token's subject is not an RPPS holder
  | 'malformed' // empty token or unusable answer
  | 'unavailable'; // PSC unreachable / error: callers should answer 503, not 401

export type IntrospectionResult = ActiveToken | { active: false; reason: InactiveReason; detail?: string };

export class TokenIntrospector {
  private readonly cache = new Map<string, { result: IntrospectionResult; until: number }>();
  private endpoint: Promise<string> | undefined;
  private readonly auth: string;
  private readonly cacheTtlMs: number;
  private readonly maxEntries: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly fetch: typeof fetch;
  /** HTTP calls made to PSC (for tests and metrics). */
  httpCalls = 0;

  constructor(private readonly opts: TokenIntrospectorOptions) {
    if (!opts.introspectionEndpoint && !opts.issuer) throw new TypeError('introspectionEndpoint or issuer is required');
    // RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    this.auth = `Basic ${Buffer.from(`${enc(opts.clientId)}:${enc(opts.clientSecret)}`).toString('base64')}`;
    this.cacheTtlMs = opts.cacheTtlMs ?? 60_000;
    this.maxEntries = opts.maxCacheEntries ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.now = opts.now ?? Date.now;
    this.fetch = opts.fetch ?? globalThis.fetch;
    if (opts.introspectionEndpoint) this.endpoint = Promise.resolve(opts.introspectionEndpoint);
  }

  async introspect(token: string): Promise<IntrospectionResult> {
    if (typeof token !== 'string' || !token || token.length > 8192) return { active: false, reason: 'malformed' };
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      if (hit.until > now) {
        this.cache.set(key, hit); // most recently used goes last
        return hit.result;
      }
    }
    const result = await this.ask(token);
    if (result.active || result.reason !== 'unavailable') this.remember(key, result, now);
    return result;
  }

  clearCache(): void {
    this.cache.clear();
  }

  private remember(key: string, result: IntrospectionResult, now: number): void {
    if (this.cacheTtlMs <= 0) return;
    const until = result.active ? Math.min(now + this.cacheTtlMs, result.exp * 1000) : now + this.cacheTtlMs;
    if (until <= now) return;
    this.cache.set(key, { result, until });
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
  }

  private discover(): Promise<string> {
    this.endpoint ??= (async () => {
      const url = new URL('.well-known/openid-configuration', this.opts.issuer!.endsWith('/') ? this.opts.issuer : `${this.opts.issuer}/`);
      const res = await this.fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (!res.ok) throw new Error(`discovery HTTP ${res.status}`);
      const meta = (await res.json()) as { introspection_endpoint?: unknown };
      if (typeof meta.introspection_endpoint !== 'string') throw new Error('issuer has no introspection_endpoint');
      return meta.introspection_endpoint;
    })().catch((err: unknown) => {
      this.endpoint = undefined;
      throw err;
    });
    return this.endpoint;
  }

  private async ask(token: string): Promise<IntrospectionResult> {
    let body: Record<string, unknown>;
    try {
      const endpoint = await this.discover();
      this.httpCalls++;
      const res = await this.fetch(endpoint, {
        method: 'POST',
        headers: { authorization: this.auth, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      // oidc-provider answers 400 unsupported_token_type for a JWT it will not introspect: not active.
      if (res.status === 400) {
        const err = (await res.json().catch(() => ({}))) as { error?: string };
        return { active: false, reason: 'inactive', detail: err.error };
      }
      if (!res.ok) return { active: false, reason: 'unavailable', detail: `HTTP ${res.status}` };
      body = (await res.json()) as Record<string, unknown>;
    } catch (err) {
      return { active: false, reason: 'unavailable', detail: (err as Error).message };
    }
    return this.judge(body);
  }

  private judge(body: Record<string, unknown>): IntrospectionResult {
    if (body.active !== true) return { active: false, reason: 'inactive' };
    const exp = typeof body.exp === 'number' ? body.exp : NaN;
    if (!Number.isFinite(exp)) return { active: false, reason: 'malformed', detail: 'no exp' };
    if (exp * 1000 <= this.now()) return { active: false, reason: 'expired' };
    const clientId = typeof body.client_id === 'string' ? body.client_id : '';
    const aud = body.aud as string | string[] | undefined;
    const expected = this.opts.expectedAudience;
    if (expected) {
      const auds = aud === undefined ? [] : Array.isArray(aud) ? aud : [aud];
      const ok = auds.length ? auds.includes(expected) : clientId === expected;
      if (!ok) return { active: false, reason: 'wrong-audience', detail: `aud=${auds.join(' ') || '-'} client_id=${clientId || '-'}` };
    }
    const rpps = rppsFromNationalId(nationalIdFromClaims(body));
    if (!rpps) return { active: false, reason: 'no-rpps' };
    const given = typeof body.given_name === 'string' ? body.given_name : '';
    const family = typeof body.family_name === 'string' ? body.family_name : '';
    const name = [given, family].filter(Boolean).join(' ');
    return {
      active: true,
      rpps,
      sub: typeof body.sub === 'string' ? body.sub : '',
      ...(name ? { name } : {}),
      exp,
      scope: typeof body.scope === 'string' ? body.scope : '',
      clientId,
      ...(aud !== undefined ? { aud } : {}),
    };
  }
}
