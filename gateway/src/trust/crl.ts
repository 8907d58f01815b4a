// Revocation of peer certificates: the CRLs of the CAs the peer listener trusts (`peer.tls.ca`),
// read from files or downloaded, each verified against its issuer before use, reloaded periodically
// and on demand. Checked per request (so a refusal has a status and an audit row) rather than in the
// TLS handshake, whose CRLs could only change with a new secure context. Deny by default: once CRLs
// are configured, a certificate whose issuer has no verified CRL is refused ("status unknown").
// A download that fails or is older than the CRL in use keeps the last good one (health warns).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { EventEmitter } from 'node:events';
import { createHash, webcrypto, type X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'undici';
import type { Logger } from 'pino';
import { normaliseDn } from './allowlist.js';
import { boundedDownload } from './bounded-download.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export interface CrlStoreOptions {
  /** CRL files (PEM or DER) */
  files: string[];
  /** CRL URLs (http: or https:) */
  urls: string[];
  /** PEM bundle of the CAs whose CRLs are accepted (the peer listener's trust anchors) */
  issuersPem: string;
  /** where downloaded CRLs are kept, so a restart without network still has them */
  cacheDir?: string;
  /** CA bundle for https downloads */
  downloadCa?: string;
  timeoutMs?: number;
  maxBytes?: number;
  logger: Logger;
  now?: () => Date;
}

export type RevocationCheck = { ok: true } | { ok: false; reason: 'revoked' | 'unknown'; detail: string };

interface LoadedCrl {
  source: string;
  issuer: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  revoked: Set<string>;
}

export interface CrlStatus {
  /** every source loaded at the last refresh, and no CRL in use is past its nextUpdate */
  ok: boolean;
  crls: { issuer: string; source: string; thisUpdate: string; nextUpdate?: string; revoked: number }[];
  errors: string[];
  lastRefresh?: string;
}

/** Serial numbers compare as hex without leading zeros, lower case. */
const serialKey = (hex: string) => hex.toLowerCase().replace(/^0+(?=.)/, '');

export class CrlStore extends EventEmitter<{ updated: [] }> {
  /** by normalised issuer DN */
  private readonly crls = new Map<string, LoadedCrl>();
  private readonly issuers: x509.X509Certificate[];
  private readonly agent?: Agent;
  private errors: string[] = [];
  private lastRefresh?: Date;
  private inflight?: Promise<boolean>;
  private readonly now: () => Date;

  constructor(private readonly opts: CrlStoreOptions) {
    super();
    this.now = opts.now ?? (() => new Date());
    this.issuers = (opts.issuersPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new x509.X509Certificate(p));
    for (const u of opts.urls) {
      let url: URL | undefined;
      try { url = new URL(u); } catch { /* refused below */ }
      if (!url || !['http:', 'https:'].includes(url.protocol)) throw new Error(`peer.tls.crlUrls: ${u} is not an http(s) URL`);
    }
    if (opts.urls.some((u) => u.startsWith('https:'))) this.agent = new Agent({ connect: { ca: opts.downloadCa } });
  }

  /** Whether any CRL source is configured (otherwise revocation is not checked). */
  get enabled(): boolean {
    return this.opts.files.length + this.opts.urls.length > 0;
  }

  /** Loads every source now. True when all loaded; emits `updated` when a newer CRL was taken. */
  refresh(): Promise<boolean> {
    this.inflight ??= this.doRefresh().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async doRefresh(): Promise<boolean> {
    const errors: string[] = [];
    let changed = false;
    const sources: [string, () => Promise<Buffer>][] = [
      ...this.opts.files.map((f): [string, () => Promise<Buffer>] => [f, async () => readFileSync(f)]),
      ...this.opts.urls.map((u): [string, () => Promise<Buffer>] => [u, () => this.download(u)]),
    ];
    for (const [source, read] of sources) {
      try {
        const body = await read();
        if (await this.take(source, body)) changed = true;
        if (this.opts.urls.includes(source)) this.persist(source, body);
      } catch (e) {
        errors.push(`${source}: ${(e as Error).message}`);
        // a restart without network: the last downloaded copy, verified like a download
        const cached = this.cacheFile(source);
        if (cached && existsSync(cached) && !this.hasSource(source)) {
          try { if (await this.take(source, readFileSync(cached))) changed = true; } catch { /* reported above */ }
        }
      }
    }
    this.errors = errors;
    this.lastRefresh = this.now();
    for (const e of errors) this.opts.logger.warn(`certificate revocation list refused or unreachable: ${e}; keeping the last good one`);
    if (changed) this.emit('updated');
    return errors.length === 0;
  }

  private hasSource(source: string): boolean {
    return [...this.crls.values()].some((c) => c.source === source);
  }

  /** Verifies and takes a CRL; false when it is not newer than the one in use for its issuer. */
  private async take(source: string, body: Buffer): Promise<boolean> {
    const text = body.toString('latin1');
    const crl = new x509.X509Crl(text.includes('-----BEGIN') ? text : new Uint8Array(body));
    const issuerKey = normaliseDn(crl.issuer);
    // several anchors may share a name (CA key rollover): any of them must have signed it
    const cas = this.issuers.filter((c) => normaliseDn(c.subject) === issuerKey);
    if (!cas.length) throw new Error(`issued by ${crl.issuer}, not a CA of peer.tls.ca`);
    let signed = false;
    for (const ca of cas) if (!signed) signed = await crl.verify({ publicKey: ca });
    if (!signed) throw new Error(`signature does not verify with ${crl.issuer}`);
    const now = this.now();
    if (crl.thisUpdate.getTime() > now.getTime() + 5 * 60_000) throw new Error(`thisUpdate ${crl.thisUpdate.toISOString()} is in the future`);
    const current = this.crls.get(issuerKey);
    if (current && crl.thisUpdate < current.thisUpdate) throw new Error(`older (${crl.thisUpdate.toISOString()}) than the CRL in use (${current.thisUpdate.toISOString()}): possible replay`);
    if (current && crl.thisUpdate.getTime() === current.thisUpdate.getTime()) return false;
    const revoked = new Set(crl.entries.map((e) => serialKey(e.serialNumber)));
    this.crls.set(issuerKey, { source, issuer: crl.issuer, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revoked });
    this.opts.logger.info({ issuer: crl.issuer, revoked: revoked.size, thisUpdate: crl.thisUpdate, source }, 'certificate revocation list in use');
    return true;
  }

  private download(url: string): Promise<Buffer> {
    return boundedDownload(url, { dispatcher: url.startsWith('https:') ? this.agent : undefined, timeoutMs: this.opts.timeoutMs ?? 15_000, maxBytes: this.opts.maxBytes ?? 20 * 1024 * 1024, what: 'CRL' });
  }

  private cacheFile(url: string): string | undefined {
    if (!this.opts.cacheDir || !this.opts.urls.includes(url)) return undefined;
    return join(this.opts.cacheDir, `${createHash('sha256').update(url).digest('hex').slice(0, 24)}.crl`);
  }

  private persist(url: string, body: Buffer): void {
    const f = this.cacheFile(url);
    if (!f) return;
    try {
      mkdirSync(this.opts.cacheDir!, { recursive: true });
      writeFileSync(`${f}.tmp`, body);
      renameSync(`${f}.tmp`, f);
    } catch (e) {
      this.opts.logger.warn({ err: (e as Error).message }, 'could not keep a copy of the CRL');
    }
  }

  /** Is this (chain-verified) certificate still good? Always ok when no CRL is configured. */
  check(cert: X509Certificate): RevocationCheck {
    if (!this.enabled) return { ok: true };
    const crl = this.crls.get(normaliseDn(cert.issuer));
    if (!crl) return { ok: false, reason: 'unknown', detail: 'no verified revocation list for the issuer of the client certificate' };
    if (crl.revoked.has(serialKey(cert.serialNumber))) return { ok: false, reason: 'revoked', detail: `the client certificate was revoked by ${crl.issuer}` };
    return { ok: true };
  }

  status(): CrlStatus {
    const now = this.now().getTime();
    const crls = [...this.crls.values()];
    return {
      ok: this.errors.length === 0 && crls.every((c) => !c.nextUpdate || c.nextUpdate.getTime() > now) && (!this.enabled || crls.length > 0),
      crls: crls.map((c) => ({ issuer: c.issuer, source: c.source, thisUpdate: c.thisUpdate.toISOString(), nextUpdate: c.nextUpdate?.toISOString(), revoked: c.revoked.size })),
      errors: [...this.errors],
      lastRefresh: this.lastRefresh?.toISOString(),
    };
  }

  async close(): Promise<void> {
    await this.agent?.close();
  }
}
