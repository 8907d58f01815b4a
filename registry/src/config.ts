// Registry configuration: one JSON file, each key also settable through REGISTRY_* environment
// variables; paths are relative to the file. Validated with messages naming the bad key.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { RegistryOptions } from './app.js';

export interface RegistryConfigFile {
  listen?: { host?: string; port?: number };
  tls: { cert: string; key: string; clientCa: string | string[] };
  signer: { key: string; chain: string };
  adminToken?: string;
  db: string;
  autoApprove?: boolean;
  logLevel?: string;
}

export class RegistryConfigError extends Error {}

export function loadRegistryConfig(file: string, env: NodeJS.ProcessEnv = process.env): RegistryOptions & { host: string; port: number; logLevel: string } {
  let raw: RegistryConfigFile;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as RegistryConfigFile;
  } catch (e) {
    throw new RegistryConfigError(`cannot read registry config ${file}: ${(e as Error).message}`);
  }
  const base = dirname(resolve(file));
  const need = (v: unknown, key: string): string => {
    if (typeof v !== 'string' || !v) throw new RegistryConfigError(`config key ${key} is required (a string)`);
    return v;
  };
  const read = (p: string, key: string): string => {
    try {
      return readFileSync(resolve(base, p), 'utf8');
    } catch (e) {
      throw new RegistryConfigError(`config key ${key}: cannot read ${p}: ${(e as Error).message}`);
    }
  };
  const clientCa = raw.tls?.clientCa;
  const cas = (Array.isArray(clientCa) ? clientCa : [need(clientCa, 'tls.clientCa')]).map((p, i) => read(need(p, `tls.clientCa[${i}]`), 'tls.clientCa'));
  const port = Number(env.REGISTRY_PORT ?? raw.listen?.port ?? 8440);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RegistryConfigError('config key listen.port must be a port number');
  const adminToken = need(env.REGISTRY_ADMIN_TOKEN ?? raw.adminToken, 'adminToken (or REGISTRY_ADMIN_TOKEN)');
  if (adminToken.length < 16) throw new RegistryConfigError('config key adminToken must be at least 16 characters');
  return {
    host: env.REGISTRY_HOST ?? raw.listen?.host ?? '127.0.0.1',
    port,
    logLevel: env.REGISTRY_LOG_LEVEL ?? raw.logLevel ?? 'info',
    tls: { certPem: read(need(raw.tls?.cert, 'tls.cert'), 'tls.cert'), keyPem: read(need(raw.tls?.key, 'tls.key'), 'tls.key'), clientCaPem: cas },
    signer: { keyPem: read(need(raw.signer?.key, 'signer.key'), 'signer.key'), chainPem: read(need(raw.signer?.chain, 'signer.chain'), 'signer.chain') },
    adminToken,
    dbFile: resolve(base, need(env.REGISTRY_DB ?? raw.db, 'db')),
    autoApprove: (env.REGISTRY_AUTO_APPROVE ?? String(raw.autoApprove ?? false)) === 'true',
  };
}
