// Server-side clinician sessions (after PSC login) and in-flight login transactions, in SQLite.
// The cookie holds a random 256-bit id; the table holds only its SHA-256, so a copy of the
// database gives no usable session cookie, and the PSC tokens are sealed (AES-256-GCM, token-seal.ts),
// so it gives no usable PSC token either. Idle and absolute expiry are enforced on every read.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { Clinician } from './psc-claims.js';
import { TokenSealer } from './token-seal.js';

export const SESSION_COOKIE = 'drimbox_session';
export const LOGIN_COOKIE = 'drimbox_login';

export interface SessionTokens {
  accessToken: string;
  accessTokenExpiresAt?: number; // epoch ms
  refreshToken?: string;
  idToken?: string;
}

export interface ClinicianSession extends SessionTokens {
  id: string; // the cookie value
  clinician: Clinician;
  createdAt: number; // epoch ms
  lastSeenAt: number;
  expiresAt: number; // absolute expiry, epoch ms
}

export interface LoginTransaction {
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
}

export interface SessionStoreOptions {
  idleTimeoutMs?: number; // default 30 min
  absoluteTimeoutMs?: number; // default 12 h
  loginTimeoutMs?: number; // how long a login may take at PSC; default 10 min
  now?: () => number; // for tests
  /** 32-byte key sealing the PSC tokens at rest; default: a random key of this process (sessions do not survive a restart) */
  tokenKey?: Buffer;
}

interface SessionRow {
  clinician_json: string;
  access_token: string;
  access_token_expires_at: number | null;
  refresh_token: string | null;
  id_token: string | null;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

/** How a secret id (session cookie, viewer call id) is stored: its SHA-256, hex. */
export const hashId = (id: string): string => createHash('sha256').update(id).digest('hex');
const newId = () => randomBytes(32).toString('base64url');

export class SessionStore {
  readonly idleTimeoutMs: number;
  readonly absoluteTimeoutMs: number;
  readonly loginTimeoutMs: number;
  private readonly now: () => number;
  private readonly sealer: TokenSealer;

  constructor(private readonly db: Db, opts: SessionStoreOptions = {}) {
    this.sealer = new TokenSealer(opts.tokenKey ?? randomBytes(32));
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30 * 60_000;
    this.absoluteTimeoutMs = opts.absoluteTimeoutMs ?? 12 * 3600_000;
    this.loginTimeoutMs = opts.loginTimeoutMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  create(clinician: Clinician, tokens: SessionTokens): ClinicianSession {
    const id = newId();
    const key = hashId(id);
    const now = this.now();
    const expiresAt = now + this.absoluteTimeoutMs;
    this.db
      .prepare(
        `INSERT INTO sessions (id_hash, rpps, clinician_json, access_token, access_token_expires_at, refresh_token, id_token, created_at, last_seen_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(key, clinician.rpps, JSON.stringify(clinician), this.seal(tokens.accessToken, key, 'access'), tokens.accessTokenExpiresAt ?? null,
        this.seal(tokens.refreshToken, key, 'refresh'), this.seal(tokens.idToken, key, 'id'), now, now, expiresAt);
    return { id, clinician, ...tokens, createdAt: now, lastSeenAt: now, expiresAt };
  }

  /** The live session for a cookie value (and marks it used), or undefined if unknown/expired. */
  get(id: string | undefined): ClinicianSession | undefined {
    if (!id) return undefined;
    const key = hashId(id);
    const row = this.db.prepare('SELECT * FROM sessions WHERE id_hash = ?').get(key) as SessionRow | undefined;
    if (!row) return undefined;
    const now = this.now();
    if (now >= row.expires_at || now - row.last_seen_at >= this.idleTimeoutMs) {
      this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(key);
      return undefined;
    }
    const accessToken = this.sealer.open(row.access_token, `${key}|access`);
    if (accessToken === undefined) {
      // sealed with another key (key changed) or written in clear by an older version: log in again
      this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(key);
      return undefined;
    }
    this.db.prepare('UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?').run(now, key);
    const refreshToken = row.refresh_token ? this.sealer.open(row.refresh_token, `${key}|refresh`) : undefined;
    const idToken = row.id_token ? this.sealer.open(row.id_token, `${key}|id`) : undefined;
    return {
      id,
      clinician: JSON.parse(row.clinician_json) as Clinician,
      accessToken,
      ...(row.access_token_expires_at != null ? { accessTokenExpiresAt: row.access_token_expires_at } : {}),
      ...(refreshToken ? { refreshToken } : {}),
      ...(idToken ? { idToken } : {}),
      createdAt: row.created_at,
      lastSeenAt: now,
      expiresAt: row.expires_at,
    };
  }

  /** Replaces the PSC tokens of a session (after a refresh). */
  updateTokens(id: string, tokens: SessionTokens): void {
    const key = hashId(id);
    this.db
      .prepare('UPDATE sessions SET access_token = ?, access_token_expires_at = ?, refresh_token = COALESCE(?, refresh_token), id_token = COALESCE(?, id_token) WHERE id_hash = ?')
      .run(this.seal(tokens.accessToken, key, 'access'), tokens.accessTokenExpiresAt ?? null, this.seal(tokens.refreshToken, key, 'refresh'),
        this.seal(tokens.idToken, key, 'id'), key);
  }

  private seal(token: string, key: string, kind: 'access' | 'refresh' | 'id'): string;
  private seal(token: string | undefined, key: string, kind: 'access' | 'refresh' | 'id'): string | null;
  private seal(token: string | undefined, key: string, kind: 'access' | 'refresh' | 'id'): string | null {
    return token === undefined ? null : this.sealer.seal(token, `${key}|${kind}`);
  }

  delete(id: string | undefined): boolean {
    if (!id) return false;
    return this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(hashId(id)).changes > 0;
  }

  /** Deletes expired sessions and stale login transactions; returns how many sessions went. */
  purgeExpired(): number {
    const now = this.now();
    this.db.prepare('DELETE FROM login_transactions WHERE expires_at <= ?').run(now);
    return this.db
      .prepare('DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?')
      .run(now, now - this.idleTimeoutMs).changes;
  }

  /** Stores a login in flight; returns the id to put in the login cookie. */
  beginLogin(tx: LoginTransaction): string {
    const id = newId();
    this.db
      .prepare('INSERT INTO login_transactions (id_hash, state, nonce, code_verifier, return_to, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(hashId(id), tx.state, tx.nonce, tx.codeVerifier, tx.returnTo, this.now() + this.loginTimeoutMs);
    return id;
  }

  /** Takes (and deletes: single use) a login in flight. */
  takeLogin(id: string | undefined): LoginTransaction | undefined {
    if (!id) return undefined;
    const key = hashId(id);
    const row = this.db.prepare('DELETE FROM login_transactions WHERE id_hash = ? RETURNING *').get(key) as
      | { state: string; nonce: string; code_verifier: string; return_to: string; expires_at: number }
      | undefined;
    if (!row || row.expires_at <= this.now()) return undefined;
    return { state: row.state, nonce: row.nonce, codeVerifier: row.code_verifier, returnTo: row.return_to };
  }
}

/** Minimal cookie header parsing (first value wins). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(v);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Set-Cookie value; always HttpOnly, Secure, SameSite=Lax (the user listener is HTTPS in production). */
export function serializeCookie(name: string, value: string, opts: { path?: string; maxAgeSeconds?: number } = {}): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, `Path=${opts.path ?? '/'}`, 'HttpOnly', 'Secure', 'SameSite=Lax'];
  if (opts.maxAgeSeconds !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`);
  return parts.join('; ');
}
