// PSC tokens at rest: AES-256-GCM with the box's token key, so a copy of the database (backup, stolen
// disk) holds no token a thief could present to a source box. Each value is bound to its session row
// and column (additional data), so sealed values cannot be swapped between sessions.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PREFIX = 'v1.';

export class TokenSealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the PSC token key must be 32 bytes');
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv).setAAD(Buffer.from(context));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url');
  }

  /** The plain token, or undefined when the value was not sealed with this key for this context. */
  open(sealed: string, context: string): string | undefined {
    if (!sealed.startsWith(PREFIX)) return undefined;
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64url');
    if (raw.length < 28) return undefined;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12)).setAAD(Buffer.from(context));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

/**
 * The token key: `configured` (base64 of 32 bytes, config psc.tokenKey / DRIMBOX_PSC__TOKEN_KEY) or
 * else the key file in the data directory, created (mode 0600) at first start.
 */
export function loadTokenKey(configured: string, dataDir: string): Buffer {
  if (configured) {
    const key = Buffer.from(configured, 'base64');
    if (key.length !== 32) throw new Error('psc.tokenKey: must be 32 bytes, base64 (openssl rand -base64 32)');
    return key;
  }
  const file = join(dataDir, 'psc-token.key');
  if (!existsSync(file)) {
    try {
      writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file}: not a 32-byte base64 key`);
  return key;
}
