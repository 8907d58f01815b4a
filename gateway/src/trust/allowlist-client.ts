// Keeps the box's copy of the network allow-list: downloads it at start and periodically, verifies
// signature and chain, and keeps the last good list whenever an update is unsigned, tampered, expired,
// older than the one in use, or unreachable (logged loudly, visible in status() for /healthz).
// The last good list is persisted (still signed, re-verified on load) so a restart keeps it.
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync, renameSync, mkdirSync, statSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Agent } from 'undici';
import pino, { type Logger } from 'pino';
import { verifyAllowList, normaliseDn, AllowListRejected, type AllowList, type AllowListEntry, type AllowListSigner } from './allowlist.js';
import { startPeriodic } from './periodic.js';
import { boundedDownload } from './bounded-download.js';

export interface AllowListClientOptions {
  /** Where the signed list is published (http: or https:). */
  url: string;
  /** PEM trust anchors for the list's signer (e.g. the IGC-Santé root). */
  trustAnchors: string[];
  expectedSignerSubject?: string | RegExp;
  /** Refresh period; default 24 h. */
  intervalMs?: number;
  /** Least time between two downloads triggered by an unknown peer or host (refreshOnMiss); default 5 min. */
  missRefreshMs?: number;
  /** File holding the last good (signed) list; enables restarts without network. */
  cacheFile?: string;
  /** TLS towards the publisher: `ca` to check its certificate, `cert`/`key` for mTLS. PEM strings. */
  tls?: { ca?: string | string[]; cert?: string; key?: string; servername?: string };
  /** Refuse lists generated longer ago than this (an "expired" list). Default: no limit. */
  maxListAgeMs?: number;
  /** status().ok turns false when no list was verified for this long; default 2 × interval + 1 h. */
  staleAfterMs?: number;
  timeoutMs?: number;
  /** Largest accepted download; default 10 MiB. */
  maxBytes?: number;
  logger?: Logger;
  now?: () => Date;
}

export interface AllowListStatus {
  /** A verified list is in use and it was (re)verified recently enough. */
  ok: boolean;
  /** When the list in use was last verified (download, or load from the cache file). */
  lastGood?: Date;
  lastError?: string;
  lastAttempt?: Date;
  generatedAt?: Date;
  entries: number;
  signer?: string;
  source?: 'download' | 'cache';
}

export interface AllowListClientEvents {
  /** a list of another generation than the one in use was verified and taken */
  updated: [{ list: AllowList; signer: AllowListSigner }];
  rejected: [string];
}

/**
 * The origin (`https://host[:port]`, default port elided) of a box's peer API as the list's `db`
 * names it (`host` or `host:port`); undefined when `db` is not a host.
 */
export function peerOrigin(boxHost: string): string | undefined {
  try {
    const u = new URL(`https://${boxHost.trim()}`);
    if (u.pathname !== '/' || u.username || u.password || u.search || u.hash) return undefined;
    return `https://${u.hostname.replace(/\.$/, '')}${u.port ? `:${u.port}` : ''}`;
  } catch {
    return undefined;
  }
}

/** Path every peer DICOMweb URL lives under (DRIM-M: `https://<db>/dicom-web/...`). */
export const PEER_API_PATH = '/dicom-web/';

export class AllowListClient extends EventEmitter<AllowListClientEvents> {
  private list?: AllowList;
  private signer?: AllowListSigner;
  private dns = new Set<string>();
  /** peer API origins of the listed boxes (scheme + host + port) */
  private origins = new Set<string>();
  private lastGood?: Date;
  private lastError?: string;
  private lastAttempt?: Date;
  private source?: 'download' | 'cache';
  private stopRefreshing?: () => void;
  private agent?: Agent;
  private inflight?: Promise<boolean>;
  private lastMissRefresh = -Infinity;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly intervalMs: number;

  constructor(private readonly opts: AllowListClientOptions) {
    super();
    this.log = opts.logger ?? pino({ name: 'allowlist' });
    this.now = opts.now ?? (() => new Date());
    this.intervalMs = opts.intervalMs ?? 24 * 60 * 60 * 1000;
    const t = opts.tls;
    if (opts.url.startsWith('https:') && t) {
      this.agent = new Agent({ connect: { ca: t.ca, cert: t.cert, key: t.key, servername: t.servername } });
    }
  }

  /** Load the cached list (if any), download once, then refresh every interval. Never throws for a bad list. */
  async start(): Promise<void> {
    await this.loadCache();
    await this.refresh();
    this.stopRefreshing = startPeriodic(this.intervalMs, () => this.refresh(), (err) => this.log.warn({ err }, 'allow-list not refreshed'));
  }

  async stop(): Promise<void> {
    this.stopRefreshing?.();
    this.stopRefreshing = undefined;
    await this.agent?.close();
  }

  /** Download and verify now. True when a new list was accepted. Concurrent calls share one attempt. */
  refresh(): Promise<boolean> {
    this.inflight ??= this.doRefresh().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /**
   * Downloads again because a peer or a source host was not on the list (approved since the list in
   * use was made), at most once per missRefreshMs: an unlisted caller cannot make the box hammer the
   * registry. Resolves when that download (or the one in flight) is over.
   */
  async refreshOnMiss(): Promise<void> {
    const now = this.now().getTime();
    if (now - this.lastMissRefresh >= (this.opts.missRefreshMs ?? 5 * 60_000)) {
      this.lastMissRefresh = now;
      this.log.info('a peer or host is not on the allow-list: downloading it again');
      await this.refresh();
    } else {
      await this.inflight;
    }
  }

  /** isPeerAllowed, downloading the list again first (refreshOnMiss) when the DN is not on it. */
  async allowsPeer(certSubjectDn: string): Promise<boolean> {
    if (this.isPeerAllowed(certSubjectDn)) return true;
    await this.refreshOnMiss();
    return this.isPeerAllowed(certSubjectDn);
  }

  private async doRefresh(): Promise<boolean> {
    this.lastAttempt = this.now();
    let body: Buffer;
    try {
      body = await this.download();
    } catch (e) {
      return this.reject(`allow-list unreachable at ${this.opts.url}: ${(e as Error).message}`);
    }
    try {
      await this.accept(body, 'download');
      this.persist(body);
      return true;
    } catch (e) {
      const reason = e instanceof AllowListRejected ? e.reason : (e as Error).message;
      return this.reject(`allow-list from ${this.opts.url} refused: ${reason}`);
    }
  }

  private reject(reason: string): false {
    this.lastError = reason;
    this.log.warn({ url: this.opts.url, keptList: Boolean(this.list), generatedAt: this.list?.generatedAt }, `${reason}; ${this.list ? 'keeping the last good list' : 'NO allow-list in use: every peer is refused'}`);
    this.emit('rejected', reason);
    return false;
  }

  private download(): Promise<Buffer> {
    return boundedDownload(this.opts.url, { dispatcher: this.agent, timeoutMs: this.opts.timeoutMs ?? 30_000, maxBytes: this.opts.maxBytes ?? 10 * 1024 * 1024, what: 'list', headers: { accept: 'application/xml, text/xml' } });
  }

  private async accept(body: Buffer, source: 'download' | 'cache', verifiedAt = this.now()): Promise<void> {
    const { list, signer } = await verifyAllowList(body, { trustAnchors: this.opts.trustAnchors, expectedSignerSubject: this.opts.expectedSignerSubject, now: this.now() });
    const maxAge = this.opts.maxListAgeMs;
    if (maxAge !== undefined && this.now().getTime() - list.generatedAt.getTime() > maxAge) {
      throw new AllowListRejected(`list expired: generated ${list.generatedAt.toISOString()}, older than ${Math.round(maxAge / 3600_000)} h`);
    }
    if (this.list && list.generatedAt < this.list.generatedAt) {
      throw new AllowListRejected(`list generated ${list.generatedAt.toISOString()} is older than the one in use (${this.list.generatedAt.toISOString()}): possible replay`);
    }
    // a download of the list already in use (same generation) changes nothing: no 'updated'
    const changed = !this.list || list.generatedAt.getTime() !== this.list.generatedAt.getTime();
    this.list = list;
    this.signer = signer;
    this.dns = new Set(list.entries.map((e) => normaliseDn(e.operatorDn)));
    this.origins = new Set(list.entries.map((e) => peerOrigin(e.boxHost)).filter((o): o is string => Boolean(o)));
    this.lastGood = verifiedAt;
    this.lastError = undefined;
    this.source = source;
    this.log.info({ entries: list.entries.length, generatedAt: list.generatedAt, signer: signer.subject, source }, 'allow-list verified and in use');
    if (changed) this.emit('updated', { list, signer });
  }

  private async loadCache(): Promise<void> {
    const f = this.opts.cacheFile;
    if (!f || !existsSync(f)) return;
    try {
      await this.accept(readFileSync(f), 'cache', statSync(f).mtime);
    } catch (e) {
      this.reject(`cached allow-list ${f} refused: ${e instanceof AllowListRejected ? e.reason : (e as Error).message}`);
    }
  }

  private persist(body: Buffer): void {
    const f = this.opts.cacheFile;
    if (!f) return;
    try {
      mkdirSync(dirname(f), { recursive: true });
      const tmp = `${f}.${process.pid}.tmp`;
      writeFileSync(tmp, body);
      renameSync(tmp, f);
    } catch (e) {
      this.log.warn({ file: f, err: (e as Error).message }, 'could not persist the allow-list');
    }
  }

  /** True when the peer certificate subject (node `X509Certificate.subject` or RFC 2253) is listed. */
  isPeerAllowed(certSubjectDn: string | undefined): boolean {
    return Boolean(certSubjectDn) && this.dns.has(normaliseDn(certSubjectDn as string));
  }

  /**
   * True when `host` (`host` or `host:port`; a URL is judged by isPeerUrlAllowed) names a listed box:
   * host AND port (443 when absent) equal a `db` entry's.
   */
  isSourceHostAllowed(host: string | undefined): boolean {
    if (!host) return false;
    if (host.includes('://')) return this.isPeerUrlAllowed(host);
    const o = peerOrigin(host.toLowerCase());
    return Boolean(o) && this.origins.has(o as string);
  }

  /**
   * True when `url` may be called with a clinician's token and this box's certificate: https, no
   * credentials, scheme + host + port equal to a listed box's peer origin, and a path under its
   * `/dicom-web/`. Anything else on a listed host (another port, an admin path) is refused.
   */
  isPeerUrlAllowed(url: string | URL | undefined): boolean {
    if (!url) return false;
    let u: URL;
    try {
      u = typeof url === 'string' ? new URL(url) : url;
    } catch {
      return false;
    }
    if (u.protocol !== 'https:' || u.username || u.password) return false;
    const o = peerOrigin(u.host);
    return Boolean(o) && this.origins.has(o as string) && u.pathname.startsWith(PEER_API_PATH);
  }

  /** The listed entry for a peer certificate subject, if any. */
  entryForPeer(certSubjectDn: string): AllowListEntry | undefined {
    const n = normaliseDn(certSubjectDn);
    return this.list?.entries.find((e) => normaliseDn(e.operatorDn) === n);
  }

  entries(): AllowListEntry[] {
    return this.list ? [...this.list.entries] : [];
  }

  current(): { list: AllowList; signer: AllowListSigner } | undefined {
    return this.list && this.signer ? { list: this.list, signer: this.signer } : undefined;
  }

  status(): AllowListStatus {
    const stale = this.opts.staleAfterMs ?? 2 * this.intervalMs + 3600_000;
    const fresh = this.lastGood !== undefined && this.now().getTime() - this.lastGood.getTime() <= stale;
    return {
      ok: Boolean(this.list) && fresh,
      lastGood: this.lastGood,
      lastError: this.lastError,
      lastAttempt: this.lastAttempt,
      generatedAt: this.list?.generatedAt,
      entries: this.list?.entries.length ?? 0,
      signer: this.signer?.subject,
      source: this.source,
    };
  }
}
