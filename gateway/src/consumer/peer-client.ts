// The consumer's client for source boxes (DRIM-M.md §4): mutual TLS with the box certificate, one
// connection pool per source origin, and only towards the peer API of boxes on the network allow-list
// (same scheme, host and port as a listed box, path under its /dicom-web/) — a KOS naming anything else,
// another port or an admin path of a listed host included, is refused before a connection is opened,
// so no clinician token ever goes there.
// Every request carries the clinician's PSC token and the KOS that grants the access. A source box
// whose server certificate the CA revoked is refused in the handshake, as its client certificate is
// refused at its own listener.
import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { RevocationCheck } from '../trust/crl.js';
import { abortableSleep } from '../abortable-sleep.js';

/** Transfer syntaxes in the order ANS lists them, then "as stored" so what we cache is what the PACS holds. */
const DRIMM_TRANSFER_SYNTAXES = [
  '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.90',
  '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.57',
  '1.2.840.10008.1.2.4.100', '1.2.840.10008.1.2.4.102', '1.2.840.10008.1.2.5', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2',
];
export const DRIMM_ACCEPT = [
  ...DRIMM_TRANSFER_SYNTAXES.map((ts, i) => `multipart/related; type="application/dicom"; transfer-syntax=${ts}; q=${(0.9 - i * 0.05).toFixed(2)}`),
  'multipart/related; type="application/dicom"; transfer-syntax=*; q=0.1',
].join(', ');

export interface PeerClientOptions {
  tls: { cert: string; key: string; ca: string };
  /** the network allow-list: may this URL be called with the clinician's token (a listed box's peer API)? */
  isUrlAllowed: (url: string) => boolean;
  connectTimeoutMs?: number;
  /** time to the response headers, and the longest silence while a body streams */
  timeoutMs?: number;
  /** extra attempts for idempotent requests that failed before any byte of the answer */
  retries?: number;
  /** connections per source box */
  connections?: number;
  /** the revocation status of a source box's server certificate (the CRLs the trust layer keeps) */
  revocation?: (cert: X509Certificate) => RevocationCheck;
}

export interface PeerCall {
  token: string;
  kosUid: string;
  accept: string;
  signal?: AbortSignal;
}

/** The URL is not the peer API of a box on the allow-list: refused without contacting it. */
export class PeerNotAllowedError extends Error {
  constructor(readonly host: string) {
    super(`${host} is not the peer API of a box on the network allow-list`);
    this.name = 'PeerNotAllowedError';
  }
}

/** The source box answered with an error status (401, 403, 404, 410…). */
export class PeerStatusError extends Error {
  constructor(readonly status: number, readonly detail: string, readonly title = '') {
    super(`source box answered ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'PeerStatusError';
  }
}

/**
 * What a source box's 401 refused, from its problem title (peer-access, trust layer): the clinician's
 * PSC token, this box's certificate, or something else (a KOS, an unknown reason).
 */
export function peerRefusalKind(e: PeerStatusError): 'token' | 'certificate' | 'other' {
  if (/^Clinician token (refused|required)$/i.test(e.title)) return 'token';
  if (/^Client certificate (refused|required)$/i.test(e.title)) return 'certificate';
  return 'other';
}

/** The source box's server certificate is revoked, or its revocation status unknown: not retried. */
export class PeerCertificateRevokedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerCertificateRevokedError';
  }
}

/** The source box could not be reached or failed while answering. */
export class PeerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PeerUnavailableError';
  }
}

const RETRY_STATUS = new Set([502, 503, 504]);

export class PeerClient {
  private readonly agents = new Map<string, Agent>();
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly retries: number;
  /** connections opened per origin (tests check that refused hosts get none) */
  readonly connectsByOrigin = new Map<string, number>();

  constructor(private readonly opts: PeerClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.retries = opts.retries ?? 2;
  }

  /** Checks a URL against the allow-list; returns its origin. Throws PeerNotAllowedError. */
  check(url: string): string {
    return this.checked(url).origin;
  }

  /** The parsed URL, once the allow-list accepts it (the request goes to exactly what was checked). */
  private checked(url: string): URL {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new PeerNotAllowedError(url.slice(0, 100));
    }
    if (u.protocol !== 'https:' || !this.opts.isUrlAllowed(u.href)) throw new PeerNotAllowedError(`${u.host}${u.pathname}`.slice(0, 200));
    return u;
  }

  private agentFor(origin: string): Agent {
    let a = this.agents.get(origin);
    if (!a) {
      a = new Agent({
        connect: {
          cert: this.opts.tls.cert, key: this.opts.tls.key, ca: this.opts.tls.ca, rejectUnauthorized: true, timeout: this.connectTimeoutMs,
          checkServerIdentity: (host: string, cert: PeerCertificate) => checkServerIdentity(host, cert) ?? this.revoked(cert),
        },
        connections: this.opts.connections ?? 16,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        keepAliveTimeout: 30_000,
      });
      a.on('connect', () => this.connectsByOrigin.set(origin, (this.connectsByOrigin.get(origin) ?? 0) + 1));
      this.agents.set(origin, a);
    }
    return a;
  }

  /**
   * GET on a source box. Answers 2xx with the streaming body; other statuses become PeerStatusError.
   * Connection failures and 502/503/504 are retried (GET is idempotent) with a short backoff.
   */
  async get(url: string, call: PeerCall): Promise<{ status: number; headers: Record<string, string>; body: Readable }> {
    const target = this.checked(url);
    const dispatcher = this.agentFor(target.origin);
    let lastErr: unknown;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await abortableSleep(150 * 3 ** (attempt - 1), call.signal);
      call.signal?.throwIfAborted();
      let res: Dispatcher.ResponseData;
      try {
        res = await request(target, {
          dispatcher,
          method: 'GET',
          headers: { authorization: `Bearer ${call.token}`, 'kos-sopinstanceuid': call.kosUid, accept: call.accept },
          signal: call.signal,
        });
      } catch (e) {
        if (call.signal?.aborted) throw e;
        if (e instanceof PeerCertificateRevokedError) throw e;
        lastErr = new PeerUnavailableError(`source box unreachable: ${describe(e)}`, { cause: e });
        continue;
      }
      if (res.statusCode >= 200 && res.statusCode < 300) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        return { status: res.statusCode, headers, body: res.body as unknown as Readable };
      }
      const text = (await res.body.text().catch(() => '')).slice(0, 2000);
      let detail = '';
      let title = '';
      try {
        const p = JSON.parse(text) as { title?: string; detail?: string };
        detail = [p.title, p.detail].filter(Boolean).join(': ');
        title = typeof p.title === 'string' ? p.title : '';
      } catch { detail = ''; }
      if (RETRY_STATUS.has(res.statusCode)) {
        lastErr = new PeerUnavailableError(`source box answered ${res.statusCode}${detail ? `: ${detail}` : ''}`);
        continue;
      }
      throw new PeerStatusError(res.statusCode, detail, title);
    }
    throw lastErr;
  }

  /** GET returning parsed JSON (QIDO, metadata). */
  async getJson<T>(url: string, call: Omit<PeerCall, 'accept'>): Promise<T> {
    const r = await this.get(url, { ...call, accept: 'application/dicom+json' });
    const chunks: Buffer[] = [];
    for await (const c of r.body) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return (text ? JSON.parse(text) : []) as T;
  }

  /** Drops every open connection (a new CRL: connections to a box revoked since are not reused). */
  async resetConnections(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.allSettled(agents.map((a) => a.destroy()));
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.agents.values()].map((a) => a.close()));
    this.agents.clear();
  }

  private revoked(cert: PeerCertificate): Error | undefined {
    if (!this.opts.revocation || !cert.raw) return undefined;
    const r = this.opts.revocation(new X509Certificate(cert.raw));
    if (r.ok) return undefined;
    return new PeerCertificateRevokedError(r.reason === 'revoked'
      ? "the source box's certificate is revoked by its CA"
      : "the revocation status of the source box's certificate is unknown (no verified CRL for its CA)");
  }
}

function describe(e: unknown): string {
  if (e instanceof undiciErrors.ConnectTimeoutError) return 'connection timed out';
  if (e instanceof undiciErrors.HeadersTimeoutError) return 'no answer in time';
  const code = (e as { code?: string }).code;
  return code ?? (e as Error).message;
}

