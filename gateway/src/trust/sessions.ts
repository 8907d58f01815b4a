// Server-side clinician sessions (after PSC login) and in-flight login transactions, in the box's
// database (SQLite, or PostgreSQL shared by several instances: any instance answers any request, as
// long as they share psc.tokenKey).
// The cookie holds a random 256-bit id; the table holds only its SHA-256, so a copy of the
// database gives no usable session cookie, and the PSC tokens are sealed (AES-256-GCM, token-seal.ts),
// so it gives no usable PSC token either. Idle and absolute expiry are enforced on every read.
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Schema } from '../store/schema.js';
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

/** How a secret id (session cookie, viewer call id) is stored: its SHA-256, hex. */
export const hashId = (id: string): string => createHash('sha256').update(id).digest('hex');
const newId = () => randomBytes(32).toString('base64url');

export class SessionStore {
  readonly idleTimeoutMs: number;
  readonly absoluteTimeoutMs: number;
  readonly loginTimeoutMs: number;
  private readonly now: () => number;
  private readonly sealer: TokenSealer;

  constructor(private readonly db: Kysely<Schema>, opts: SessionStoreOptions = {}) {
    this.sealer = new TokenSealer(opts.tokenKey ?? randomBytes(32));
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30 * 60_000;
    this.absoluteTimeoutMs = opts.absoluteTimeoutMs ?? 12 * 3600_000;
    this.loginTimeoutMs = opts.loginTimeoutMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  async create(clinician: Clinician, tokens: SessionTokens): Promise<ClinicianSession> {
    const id = newId();
    const key = hashId(id);
    const now = this.now();
    const expiresAt = now + this.absoluteTimeoutMs;
    await this.db.insertInto('sessions').values({
      id_hash: key, rpps: clinician.rpps, clinician_json: JSON.stringify(clinician), access_token: this.seal(tokens.accessToken, key, 'access'),
      access_token_expires_at: tokens.accessTokenExpiresAt ?? null, refresh_token: this.seal(tokens.refreshToken, key, 'refresh'),
      id_token: this.seal(tokens.idToken, key, 'id'), created_at: now, last_seen_at: now, expires_at: expiresAt,
    }).execute();
    return { id, clinician, ...tokens, createdAt: now, lastSeenAt: now, expiresAt };
  }

  /** The live session for a cookie value (and marks it used), or undefined if unknown/expired. */
  async get(id: string | undefined): Promise<ClinicianSession | undefined> {
    if (!id) return undefined;
    const key = hashId(id);
    const row = await this.db.selectFrom('sessions').selectAll().where('id_hash', '=', key).executeTakeFirst();
    if (!row) return undefined;
    const now = this.now();
    if (now >= row.expires_at || now - row.last_seen_at >= this.idleTimeoutMs) {
      await this.db.deleteFrom('sessions').where('id_hash', '=', key).execute();
      return undefined;
    }
    const accessToken = this.sealer.open(row.access_token, `${key}|access`);
    if (accessToken === undefined) {
      // sealed with another key (key changed) or written in clear by an older version: log in again
      await this.db.deleteFrom('sessions').where('id_hash', '=', key).execute();
      return undefined;
    }
    await this.db.updateTable('sessions').set({ last_seen_at: now }).where('id_hash', '=', key).execute();
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
  async updateTokens(id: string, tokens: SessionTokens): Promise<void> {
    const key = hashId(id);
    const refresh = this.seal(tokens.refreshToken, key, 'refresh');
    const idToken = this.seal(tokens.idToken, key, 'id');
    await this.db.updateTable('sessions').set({
      access_token: this.seal(tokens.accessToken, key, 'access'),
      access_token_expires_at: tokens.accessTokenExpiresAt ?? null,
      ...(refresh !== null ? { refresh_token: refresh } : {}),
      ...(idToken !== null ? { id_token: idToken } : {}),
    }).where('id_hash', '=', key).execute();
  }

  private seal(token: string, key: string, kind: 'access' | 'refresh' | 'id'): string;
  private seal(token: string | undefined, key: string, kind: 'access' | 'refresh' | 'id'): string | null;
  private seal(token: string | undefined, key: string, kind: 'access' | 'refresh' | 'id'): string | null {
    return token === undefined ? null : this.sealer.seal(token, `${key}|${kind}`);
  }

  async delete(id: string | undefined): Promise<boolean> {
    if (!id) return false;
    const r = await this.db.deleteFrom('sessions').where('id_hash', '=', hashId(id)).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Deletes expired sessions and stale login transactions; returns how many sessions went. */
  async purgeExpired(): Promise<number> {
    const now = this.now();
    await this.db.deleteFrom('login_transactions').where('expires_at', '<=', now).execute();
    const r = await this.db.deleteFrom('sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now), eb('last_seen_at', '<=', now - this.idleTimeoutMs)])).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** Stores a login in flight; returns the id to put in the login cookie. */
  async beginLogin(tx: LoginTransaction): Promise<string> {
    const id = newId();
    await this.db.insertInto('login_transactions').values({
      id_hash: hashId(id), state: tx.state, nonce: tx.nonce, code_verifier: tx.codeVerifier, return_to: tx.returnTo, expires_at: this.now() + this.loginTimeoutMs,
    }).execute();
    return id;
  }

  /** Takes (and deletes: single use, even when two instances get the callback at once) a login in flight. */
  async takeLogin(id: string | undefined): Promise<LoginTransaction | undefined> {
    if (!id) return undefined;
    const row = await this.db.deleteFrom('login_transactions').where('id_hash', '=', hashId(id)).returningAll().executeTakeFirst();
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
