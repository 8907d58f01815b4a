// Loads and validates the configuration: JSON file, then DRIMBOX_* environment overrides, then
// checks every key. Errors name the key (e.g. "peer.port: must be a port number (1-65535)").
import { readFileSync, existsSync } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { isIP } from 'node:net';
import type { DrimboxConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

type Leaf =
  | { t: 'string'; def?: string; pattern?: RegExp; hint?: string }
  | { t: 'file'; def?: string }
  | { t: 'dir'; def?: string }
  | { t: 'url'; def?: string; protocols: string[] }
  | { t: 'int'; def?: number; min: number; max: number }
  | { t: 'port'; def?: number }
  | { t: 'enum'; def?: string; values: string[] }
  | { t: 'enum[]'; def?: string[]; values: string[] }
  | { t: 'string[]'; def?: string[] }
  | { t: 'file[]'; def?: string[] }
  | { t: 'origin[]'; def?: string[] }
  | { t: 'bool'; def?: boolean };
type Spec = { [k: string]: Leaf | Spec };

const host: Leaf = { t: 'string', def: '127.0.0.1', pattern: /^[A-Za-z0-9.:-]+$/, hint: 'a host name or IP address' };
const uid = { t: 'string', pattern: /^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/, hint: 'a DICOM UID (digits and dots)' } as const;

const common: Spec = {
  box: {
    name: { t: 'string', pattern: /^[a-z0-9][a-z0-9-]{0,62}$/, hint: 'lower-case letters, digits and dashes' },
    organization: { t: 'string' },
    uidRoot: { ...uid, def: '2.25' },
    retrieveLocationUid: { ...uid },
  },
  dataDir: { t: 'dir' },
  // empty: sqlite:<dataDir>/drimbox.db (resolved in validateConfig)
  database: { url: { t: 'string', def: '', pattern: /^$|^sqlite:.+|^postgres(ql)?:\/\/\S+$/, hint: 'sqlite:PATH or postgres://user@host:port/db' } },
  roles: { t: 'enum[]', def: ['source', 'consumer'], values: ['source', 'consumer'] },
  user: {
    host,
    port: { t: 'port' },
    publicUrl: { t: 'url', protocols: ['https:', 'http:'] },
    tls: { cert: { t: 'file' }, key: { t: 'file' } },
    allowedCallOrigins: { t: 'origin[]', def: [] },
  },
  peer: {
    host,
    port: { t: 'port' },
    publicUrl: { t: 'url', protocols: ['https:'] },
    tls: {
      cert: { t: 'file' }, key: { t: 'file' }, ca: { t: 'file' },
      // revocation of peer certificates: CRLs signed by a `ca` certificate, reloaded periodically
      crlFiles: { t: 'file[]', def: [] },
      crlUrls: { t: 'string[]', def: [] },
      crlRefreshMinutes: { t: 'int', def: 10, min: 1, max: 24 * 60 },
    },
    allowedPeers: { t: 'string[]', def: [] },
  },
  hl7: {
    host,
    port: { t: 'port' },
    maxMessageBytes: { t: 'int', def: 16 * 1024 * 1024, min: 1024, max: 512 * 1024 * 1024 },
    allowedSenders: { t: 'string[]', def: [] },
    maxConnections: { t: 'int', def: 8, min: 1, max: 256 },
    idleTimeoutSeconds: { t: 'int', def: 30, min: 1, max: 3600 },
    tls: { cert: { t: 'file' }, key: { t: 'file' }, ca: { t: 'file' } },
  },
  admin: { token: { t: 'string', pattern: /^.{24,}$/, hint: 'at least 24 characters' } },
  log: { level: { t: 'enum', def: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] } },
  dmp: {
    registryUrl: { t: 'url', protocols: ['https:'] },
    repositoryUrl: { t: 'url', protocols: ['https:'] },
    ca: { t: 'file' },
    includeReport: { t: 'bool', def: true },
    finess: { t: 'string', pattern: /^\d{9}$/, hint: 'a 9-digit FINESS number' },
    sourceId: { ...uid },
    lpsName: { t: 'string', def: 'DRIMbox' },
    lpsVersion: { t: 'string', def: '0.1.0' },
    lpsHomologationId: { t: 'string', def: 'DEV' },
    timeoutMs: { t: 'int', def: 30_000, min: 100, max: 600_000 },
  },
  psc: {
    issuer: { t: 'url', protocols: ['https:', 'http:'] },
    clientId: { t: 'string' },
    clientSecret: { t: 'string' },
    expectedAudience: { t: 'string', def: '' },
    acrValues: { t: 'string[]', def: ['eidas1'] },
    scopes: { t: 'string[]', def: ['openid', 'scope_all'] },
    introspectionCacheMs: { t: 'int', def: 60_000, min: 0, max: 3_600_000 },
    sessionIdleMinutes: { t: 'int', def: 30, min: 1, max: 24 * 60 },
    sessionMaxHours: { t: 'int', def: 12, min: 1, max: 72 },
    tokenKey: { t: 'string', def: '', pattern: /^$|^[A-Za-z0-9+/]{43}=$/, hint: '32 bytes in base64 (openssl rand -base64 32)' },
  },
  allowList: {
    url: { t: 'url', protocols: ['https:', 'http:'] },
    trustAnchors: { t: 'file[]' },
    expectedSigner: { t: 'string', def: '' },
    // revocations at the registry take effect within refreshMinutes; refreshHours (deprecated, 0 =
    // unset) still works for old configuration files
    refreshMinutes: { t: 'int', def: 10, min: 1, max: 7 * 24 * 60 },
    refreshHours: { t: 'int', def: 0, min: 0, max: 24 * 7 },
    missRefreshMinutes: { t: 'int', def: 5, min: 1, max: 24 * 60 },
    enrolUrl: { t: 'string', def: '' },
    supportContact: { t: 'string', def: '' },
  },
  cache: {
    maxBytes: { t: 'int', def: 20 * 1024 ** 3, min: 1024 ** 2, max: Number.MAX_SAFE_INTEGER },
    ttlHours: { t: 'int', def: 72, min: 1, max: 24 * 365 },
    // several instances behind a load balancer share one folder (NFS): '' = <dataDir>/consumer-cache
    dir: { t: 'string', def: '' },
  },
  publication: {
    studyWaitMinutes: { t: 'int', def: 60, min: 0, max: 7 * 24 * 60 },
    retryMaxMinutes: { t: 'int', def: 24 * 60, min: 1, max: 30 * 24 * 60 },
    stableSeconds: { t: 'int', def: 3, min: 0, max: 600 },
    concurrency: { t: 'int', def: 2, min: 1, max: 16 },
  },
  screening: {
    concurrency: { t: 'int', def: 8, min: 1, max: 32 },
    perSourceConcurrency: { t: 'int', def: 4, min: 1, max: 16 },
    retries: { t: 'int', def: 3, min: 0, max: 10 },
    retryBaseMs: { t: 'int', def: 2_000, min: 10, max: 600_000 },
    retryFailedSeconds: { t: 'int', def: 120, min: 1, max: 24 * 3600 },
    examBytesEstimate: { t: 'int', def: 60 * 1024 ** 2, min: 1024, max: 4 * 1024 ** 3 },
  },
  audit: {
    retentionDays: { t: 'int', def: 365, min: 1, max: 3650 },
    accessWindowMinutes: { t: 'int', def: 30, min: 1, max: 24 * 60 },
  },
  source: {
    iocmHost: host,
    iocmPort: { t: 'int', def: 0, min: 0, max: 65535 },
    iocmAet: { t: 'string', def: 'DRIMBOX_IOCM', pattern: /^[ -~]{1,16}$/, hint: '1-16 ASCII characters' },
    iocmCallingAets: { t: 'string[]', def: [] },
    iocmAllowedAddresses: { t: 'string[]', def: [] },
  },
};

/** Sections a box may leave out entirely (the feature is then off, or has its defaults). */
const OPTIONAL_SECTIONS = new Set(['dmp', 'psc', 'allowList', 'hl7', 'hl7.tls']);

const pacsSpecs: Record<string, Spec> = {
  dicomweb: {
    url: { t: 'url', protocols: ['http:', 'https:'] },
    timeoutMs: { t: 'int', def: 30_000, min: 100, max: 3_600_000 },
  },
  dimse: {
    host: { t: 'string', pattern: /^[A-Za-z0-9.:-]+$/ },
    port: { t: 'port' },
    calledAet: { t: 'string', pattern: /^[ -~]{1,16}$/, hint: '1-16 ASCII characters' },
    callingAet: { t: 'string', def: 'DRIMBOX', pattern: /^[ -~]{1,16}$/, hint: '1-16 ASCII characters' },
    retrieve: { t: 'enum', def: 'c-get', values: ['c-get', 'c-move'] },
    storeScpPort: { t: 'int', def: 0, min: 0, max: 65535 },
    timeoutMs: { t: 'int', def: 30_000, min: 100, max: 3_600_000 },
  },
  folder: { path: { t: 'dir' } },
};

/** Reads FILE (if given), applies environment overrides and validates. Relative paths resolve against the file's folder. */
export function loadConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  /** told about DRIMBOX_* variables that name no key (ignored: a stray variable must not stop the box) */
  warn: (message: string) => void = (m) => process.stderr.write(`drimbox: warning: ${m}\n`),
): DrimboxConfig {
  let raw: Obj = {};
  let base = process.cwd();
  if (file) {
    if (!existsSync(file)) throw new ConfigError([`${file}: no such configuration file`]);
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError([`${file}: not valid JSON (${(e as Error).message})`]);
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError([`${file}: must hold a JSON object`]);
    base = dirname(resolve(file));
  }
  applyEnv(raw, env, warn);
  return validateConfig(raw, base);
}

export function validateConfig(raw: Obj, base = process.cwd()): DrimboxConfig {
  const problems: string[] = [];
  const out = check(common, raw, '', problems, base, ['pacs']) as Obj;
  const pacs = raw.pacs;
  if (!pacs || typeof pacs !== 'object' || Array.isArray(pacs)) {
    problems.push('pacs: missing (an object with kind "dicomweb", "dimse" or "folder")');
  } else {
    const kind = (pacs as Obj).kind;
    const spec = typeof kind === 'string' ? pacsSpecs[kind] : undefined;
    if (!spec) problems.push(`pacs.kind: must be one of dicomweb, dimse, folder (got ${JSON.stringify(kind)})`);
    else out.pacs = { kind, ...(check(spec, pacs as Obj, 'pacs.', problems, base, ['kind']) as Obj) };
  }
  checkSourceListeners(out, problems);
  resolveDatabaseUrl(out, base);
  if (problems.length) throw new ConfigError(problems);
  return out as unknown as DrimboxConfig;
}

/** database.url: default the SQLite file an existing box already has; a relative sqlite path resolves like any path. */
function resolveDatabaseUrl(out: Obj, base: string): void {
  const db = out.database as Obj | undefined;
  if (!db || typeof out.dataDir !== 'string') return;
  const url = db.url as string;
  if (!url) db.url = `sqlite:${resolve(out.dataDir, 'drimbox.db')}`;
  else if (url.startsWith('sqlite:') && url !== 'sqlite::memory:' && !isAbsolute(url.slice(7))) db.url = `sqlite:${resolve(base, url.slice(7))}`;
}

/**
 * The source role's listeners, deny by default: MLLP needs a port and the RIS addresses allowed to
 * send; IOCM runs only when calling AE titles are listed, and then needs a fixed port and the PACS
 * addresses too (a PACS is configured with that port; an empty list never means "anyone").
 */
function checkSourceListeners(out: Obj, problems: string[]): void {
  const roles = Array.isArray(out.roles) ? out.roles : [];
  if (!roles.includes('source')) return;
  const hl7 = out.hl7 as Obj | undefined;
  if (!hl7) problems.push('hl7: missing (the source role receives the RIS reports over MLLP: hl7.port and hl7.allowedSenders)');
  else if ((hl7.allowedSenders as Json[]).length === 0) problems.push('hl7.allowedSenders: list the RIS addresses allowed to send (empty: nobody could)');
  for (const a of (hl7?.allowedSenders ?? []) as string[]) if (!isIP(a)) problems.push(`hl7.allowedSenders: "${a}" is not an IP address`);
  const src = out.source as Obj;
  if ((src.iocmCallingAets as Json[]).length === 0) return;
  if (src.iocmPort === 0) problems.push('source.iocmPort: required when source.iocmCallingAets is set (the PACS sends rejection notes to this port)');
  if ((src.iocmAllowedAddresses as Json[]).length === 0) problems.push('source.iocmAllowedAddresses: list the PACS addresses allowed to send rejection notes (required when source.iocmCallingAets is set)');
  for (const a of src.iocmAllowedAddresses as string[]) if (!isIP(a)) problems.push(`source.iocmAllowedAddresses: "${a}" is not an IP address`);
}

function isLeaf(s: Leaf | Spec): s is Leaf {
  return typeof (s as Leaf).t === 'string';
}

function check(spec: Spec, raw: Obj, prefix: string, problems: string[], base: string, extraKeys: string[] = []): Json {
  const out: Obj = {};
  for (const [key, s] of Object.entries(spec)) {
    const path = prefix + key;
    const v = raw?.[key];
    if (isLeaf(s)) {
      const r = checkLeaf(s, v, path, base);
      if (typeof r === 'string') problems.push(r);
      else out[key] = r.value;
    } else if (v === undefined && OPTIONAL_SECTIONS.has(path)) {
      continue;
    } else if (v === undefined || (typeof v === 'object' && v !== null && !Array.isArray(v))) {
      out[key] = check(s, (v ?? {}) as Obj, `${path}.`, problems, base);
    } else {
      problems.push(`${path}: must be an object`);
    }
  }
  for (const k of Object.keys(raw ?? {})) if (!(k in spec) && !extraKeys.includes(k)) problems.push(`${prefix}${k}: unknown key`);
  return out;
}

function checkLeaf(s: Leaf, v: Json | undefined, path: string, base: string): { value: Json } | string {
  if (v === undefined || v === null || v === '') {
    if (s.def !== undefined) v = s.def as Json;
    else return `${path}: missing`;
  }
  switch (s.t) {
    case 'string':
      if (typeof v === 'number') v = String(v); // an environment override that looked like a number
      if (typeof v !== 'string') return `${path}: must be a string`;
      if (s.pattern && !s.pattern.test(v)) return `${path}: must be ${s.hint ?? `like ${s.pattern}`}`;
      return { value: v };
    case 'file':
    case 'dir': {
      if (typeof v !== 'string') return `${path}: must be a path`;
      const p = isAbsolute(v) ? v : resolve(base, v);
      if (s.t === 'file' && !existsSync(p)) return `${path}: no such file ${p}`;
      return { value: p };
    }
    case 'url': {
      if (typeof v !== 'string') return `${path}: must be a URL`;
      let u: URL;
      try { u = new URL(v); } catch { return `${path}: not a URL (${v})`; }
      if (!s.protocols.includes(u.protocol)) return `${path}: must use ${s.protocols.join(' or ')}`;
      return { value: v.replace(/\/+$/, '') };
    }
    case 'int':
    case 'port': {
      const [min, max] = s.t === 'port' ? [1, 65535] : [s.min, s.max];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        return `${path}: must be ${s.t === 'port' ? 'a port number' : 'an integer'} (${min}-${max})`;
      }
      return { value: v };
    }
    case 'enum':
      if (typeof v !== 'string' || !s.values.includes(v)) return `${path}: must be one of ${s.values.join(', ')}`;
      return { value: v };
    case 'enum[]':
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string' || !s.values.includes(x))) {
        return `${path}: must be a non-empty list of ${s.values.join(', ')}`;
      }
      return { value: [...new Set(v)] };
    case 'string[]':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return `${path}: must be a list of strings`;
      return { value: v };
    case 'file[]': {
      if (Array.isArray(v) && v.length === 0 && s.def?.length === 0) return { value: [] }; // an optional list
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string')) return `${path}: must be a non-empty list of file paths`;
      const files = (v as string[]).map((f) => (isAbsolute(f) ? f : resolve(base, f)));
      const missing = files.find((f) => !existsSync(f));
      return missing ? `${path}: no such file ${missing}` : { value: files };
    }
    case 'origin[]': {
      // an origin is scheme://host[:port], exactly what a browser sends in the Origin header
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return `${path}: must be a list of origins (https://host[:port])`;
      for (const x of v as string[]) {
        let u: URL | undefined;
        try { u = new URL(x); } catch { /* refused below */ }
        if (!u || !['https:', 'http:'].includes(u.protocol) || u.origin !== x.replace(/\/$/, '')) return `${path}: ${JSON.stringify(x)} is not an origin (https://host[:port], no path)`;
      }
      return { value: (v as string[]).map((x) => new URL(x).origin) };
    }
    case 'bool':
      if (typeof v !== 'boolean') return `${path}: must be true or false`;
      return { value: v };
  }
}

/**
 * DRIMBOX_PEER__PORT=9443 → raw.peer.port = 9443 (values parsed as JSON when they parse). Only names
 * of known keys are taken: anything else starting with DRIMBOX_ (DRIMBOX_LOG_LEVEL, a tool's own
 * variable) is ignored with a warning. Validation runs on the merged result, so an override may
 * switch pacs.kind: the file's keys of the other kind are then dropped.
 */
function applyEnv(raw: Obj, env: NodeJS.ProcessEnv, warn: (message: string) => void): void {
  const overrides: { path: string[]; value: string }[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('DRIMBOX_') || value === undefined) continue;
    const path = name.slice('DRIMBOX_'.length).split('__').map(camel);
    if (!isKnownKey(path)) { warn(`${name} names no configuration key: ignored`); continue; }
    overrides.push({ path, value });
  }
  const kind = overrides.find((o) => o.path.join('.') === 'pacs.kind');
  const filePacs = raw.pacs;
  if (kind && (typeof filePacs !== 'object' || filePacs === null || Array.isArray(filePacs) || filePacs.kind !== kind.value)) raw.pacs = {};
  for (const { path, value } of overrides) {
    let node: Obj = raw;
    for (const seg of path.slice(0, -1)) {
      if (typeof node[seg] !== 'object' || node[seg] === null || Array.isArray(node[seg])) node[seg] = {};
      node = node[seg] as Obj;
    }
    // JSON for lists, objects, booleans and small integers; anything else (tokens, URLs) stays a string
    let parsed: Json = value;
    if (/^\s*[[{"]|^(true|false|null)$|^-?\d{1,15}$/.test(value)) {
      try { parsed = JSON.parse(value); } catch { /* plain string */ }
    }
    node[path[path.length - 1]] = parsed;
  }
}

/** Whether `path` names a key of the schema (for pacs: kind, or a key of any PACS kind). */
function isKnownKey(path: string[]): boolean {
  if (path[0] === 'pacs') return path.length === 2 && (path[1] === 'kind' || Object.values(pacsSpecs).some((s) => path[1] in s));
  let spec: Spec | Leaf = common;
  for (const seg of path) {
    if (isLeaf(spec) || !Object.hasOwn(spec, seg)) return false;
    spec = spec[seg];
  }
  return isLeaf(spec);
}

/** DATA_DIR → dataDir, ALLOWED_PEERS → allowedPeers */
function camel(s: string): string {
  return s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
