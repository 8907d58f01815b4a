// What `drimbox doctor` checks: the certificates the config names, then each dependency it names,
// reached as the box reaches it (same TLS identity, same requests as /healthz and the running box).
// Each check resolves with what it saw, or throws what is wrong.
import Database from 'better-sqlite3';
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import pino from 'pino';
import { Agent, request } from 'undici';
import type { DrimboxConfig } from '../config/schema.js';
import { DicomwebPacs } from '../pacs/dicomweb.js';
import { DimsePacs } from '../pacs/dimse.js';
import { verifyAllowList, dnMatches } from '../trust/allowlist.js';
import { peerOrigin } from '../trust/allowlist-client.js';
import { CrlStore } from '../trust/crl.js';
import { checkIdentity, checkTrustBundle } from './certificates.js';
import { databaseTarget, redactedUrl } from './database-url.js';

export interface DoctorCheck { name: string; run(signal: AbortSignal): Promise<string> }

const check = (name: string, run: (signal: AbortSignal) => Promise<string> | string): DoctorCheck => ({ name, run: async (s) => run(s) });

export function doctorChecks(config: DrimboxConfig): DoctorCheck[] {
  const peerTls = config.peer.tls;
  const checks: DoctorCheck[] = [
    check('database', () => databaseCheck(config.database.url)),
    check('certificate user.tls', () => checkIdentity(config.user.tls.cert, config.user.tls.key)),
    check('certificate peer.tls', () => checkIdentity(peerTls.cert, peerTls.key)),
    check('peer.tls.ca', () => checkTrustBundle([peerTls.ca])),
  ];
  if (peerTls.crlFiles.length + peerTls.crlUrls.length > 0) checks.push(check('revocation', () => revocationCheck(peerTls)));
  if (config.hl7?.tls) { const t = config.hl7.tls; checks.push(check('certificate hl7.tls', () => checkIdentity(t.cert, t.key))); }
  checks.push(check('pacs', (signal) => pacsCheck(config.pacs, signal)));

  const d = config.dmp;
  if (!d) checks.push(check('dmp', () => { throw new Error('not configured (dmp section): nothing can be published or searched'); }));
  else {
    checks.push(check('dmp.ca', () => checkTrustBundle([d.ca])));
    const tls = () => ({ ca: readFileSync(d.ca, 'utf8'), cert: readFileSync(peerTls.cert, 'utf8'), key: readFileSync(peerTls.key, 'utf8') });
    for (const [name, url] of new Map([['dmp registry', d.registryUrl], ['dmp repository', d.repositoryUrl]])) {
      checks.push(check(name, (signal) => httpsCheck(url, tls(), signal)));
    }
  }

  const psc = config.psc;
  if (!psc) checks.push(check('psc', () => { throw new Error('not configured (psc section): no clinician can log in or be verified'); }));
  else checks.push(check('psc', (signal) => pscCheck(psc, signal)));

  const a = config.allowList;
  if (!a) {
    checks.push(check('allow-list', () => {
      if (config.roles.includes('consumer')) throw new Error('not configured (allowList section): no source box can be called');
      return `not configured: peers are the static peer.allowedPeers (${config.peer.allowedPeers.length})`;
    }));
  } else {
    checks.push(check('allowList.trustAnchors', () => checkTrustBundle(a.trustAnchors)));
    checks.push(check('allow-list', (signal) => allowListCheck(config, signal)));
  }
  return checks;
}

async function databaseCheck(url: string): Promise<string> {
  const target = databaseTarget(url);
  if (target.dialect === 'sqlite') {
    if (!existsSync(target.path)) {
      const dir = dirname(target.path);
      accessSync(existsSync(dir) ? dir : dirname(dir), constants.W_OK);
      return `${target.path} does not exist yet: the box creates it at its first start`;
    }
    accessSync(target.path, constants.R_OK | constants.W_OK);
    const db = new Database(target.path, { readonly: true, fileMustExist: true });
    try {
      const tables = db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'").pluck().get() as number;
      return `${target.path}: SQLite ${db.prepare('SELECT sqlite_version()').pluck().get()}, ${tables} tables`;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const r = await client.query('SHOW server_version');
    return `${redactedUrl(target.url)}: PostgreSQL ${r.rows[0].server_version}`;
  } finally {
    await client.end();
  }
}

async function pacsCheck(p: DrimboxConfig['pacs'], signal: AbortSignal): Promise<string> {
  switch (p.kind) {
    case 'dicomweb': {
      const pacs = new DicomwebPacs(p);
      try {
        await pacs.echo(signal);
        return `DICOMweb ${p.url} answered GET /studies?limit=1`;
      } finally {
        await pacs.close();
      }
    }
    case 'dimse': {
      // echo needs no store SCP: the adapter is not started
      const pacs = new DimsePacs(p);
      try {
        await pacs.echo(signal);
        return `C-ECHO ${p.callingAet} → ${p.calledAet}@${p.host}:${p.port} succeeded (retrieve by ${p.retrieve}${p.retrieve === 'c-move' ? `, destination port ${p.storeScpPort}` : ''})`;
      } finally {
        await pacs.close();
      }
    }
    case 'folder':
      accessSync(p.path, constants.R_OK | constants.W_OK);
      return `folder ${p.path} is readable and writable`;
  }
}

/** The CRLs load and verify as the box loads them, none is past its nextUpdate, and this box's own certificate is not on one. */
async function revocationCheck(t: DrimboxConfig['peer']['tls']): Promise<string> {
  const ca = readFileSync(t.ca, 'utf8');
  const crl = new CrlStore({ files: t.crlFiles, urls: t.crlUrls, issuersPem: ca, downloadCa: ca, logger: pino({ level: 'silent' }) });
  try {
    await crl.refresh();
    const s = crl.status();
    if (!s.ok) throw new Error(s.errors.join('; ') || 'a revocation list is past its nextUpdate: its issuer no longer publishes');
    const own = crl.check(new X509Certificate(readFileSync(t.cert)));
    if (!own.ok && own.reason === 'revoked') throw new Error(`this box's own peer certificate is revoked: ${own.detail.replace('the client certificate was revoked by ', 'by ')}`);
    return s.crls.map((c) => `${c.issuer.replace(/\n/g, ',')}: ${c.revoked} revoked, next update ${c.nextUpdate ?? 'not given'}`).join('; ');
  } finally {
    await crl.close();
  }
}

/** TLS handshake with the box's client certificate, then any HTTP answer (the path, TLS and server work). */
async function httpsCheck(url: string, tls: { ca: string; cert: string; key: string }, signal: AbortSignal): Promise<string> {
  const u = new URL(url);
  const seen = await new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: u.hostname, port: Number(u.port || 443), servername: isIP(u.hostname) ? undefined : u.hostname, ...tls }, () => {
      const peer = socket.getPeerCertificate();
      resolve(`${socket.getProtocol()}, server CN=${peer.subject?.CN ?? '?'}`);
      socket.destroy();
    });
    socket.on('error', (e) => reject(new Error(`TLS handshake with ${u.host} failed: ${e.message}`)));
    signal.addEventListener('abort', () => { socket.destroy(); reject(new Error(`no TLS handshake with ${u.host} within the timeout`)); }, { once: true });
  });
  const agent = new Agent({ connect: tls, connections: 1 });
  try {
    const r = await request(url, { dispatcher: agent, signal });
    await r.body.dump();
    return `${url}: ${seen}, HTTP ${r.statusCode}`;
  } finally {
    await agent.close();
  }
}

/** The discovery document, then the client credentials at the introspection endpoint (an unknown token: inactive, not refused). */
async function pscCheck(psc: NonNullable<DrimboxConfig['psc']>, signal: AbortSignal): Promise<string> {
  const res = await fetch(`${psc.issuer}/.well-known/openid-configuration`, { signal });
  if (!res.ok) throw new Error(`${psc.issuer}/.well-known/openid-configuration: HTTP ${res.status}`);
  const meta = (await res.json()) as { issuer?: string; introspection_endpoint?: string };
  if (meta.issuer !== psc.issuer) throw new Error(`the discovery document names issuer ${meta.issuer}, not ${psc.issuer}`);
  if (!meta.introspection_endpoint) throw new Error('the discovery document has no introspection_endpoint');
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  const r = await fetch(meta.introspection_endpoint, {
    method: 'POST', signal,
    headers: { authorization: `Basic ${Buffer.from(`${enc(psc.clientId)}:${enc(psc.clientSecret)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'token=drimbox-doctor-probe',
  });
  if (r.status === 401 || r.status === 400) throw new Error(`discovery ok, but PSC refuses client ${psc.clientId} at the introspection endpoint (HTTP ${r.status}): check psc.clientId and psc.clientSecret`);
  if (!r.ok) throw new Error(`introspection endpoint answered HTTP ${r.status}`);
  const body = (await r.json()) as { active?: boolean };
  if (body.active !== false) throw new Error('the introspection endpoint did not answer {"active": false} for a made-up token');
  return `${psc.issuer}: discovery ok, client ${psc.clientId} accepted at the introspection endpoint`;
}

/** Downloads the signed list as the box does, verifies it, and looks for this box on it. */
async function allowListCheck(config: DrimboxConfig, signal: AbortSignal): Promise<string> {
  const a = config.allowList!;
  const t = config.peer.tls;
  const agent = new Agent({ connect: { ca: readFileSync(t.ca, 'utf8'), cert: readFileSync(t.cert, 'utf8'), key: readFileSync(t.key, 'utf8') } });
  let body: Buffer;
  try {
    const r = await request(a.url, { dispatcher: agent, signal, headers: { accept: 'application/xml, text/xml' } });
    body = Buffer.from(await r.body.arrayBuffer());
    if (r.statusCode !== 200) throw new Error(`${a.url}: HTTP ${r.statusCode}`);
  } finally {
    await agent.close();
  }
  const { list, signer } = await verifyAllowList(body, {
    trustAnchors: a.trustAnchors.map((f) => readFileSync(f, 'utf8')),
    expectedSignerSubject: a.expectedSigner || undefined,
  }).catch((e: Error) => { throw new Error(`${a.url}: the list is refused: ${(e as { reason?: string }).reason ?? e.message}`); });
  const own = new X509Certificate(readFileSync(t.cert)).subject;
  const entry = list.entries.find((e) => dnMatches(own, e.operatorDn));
  const head = `${list.entries.length} entries, signed by ${signer.subject}, generated ${list.generatedAt.toISOString()}`;
  if (!entry) throw new Error(`${head}; this box (${own.split('\n').reverse().join(',')}) is not on it: enrol at the registry`);
  const origin = new URL(config.peer.publicUrl).origin;
  if (peerOrigin(entry.boxHost) !== origin) throw new Error(`${head}; this box is listed with db=${entry.boxHost}, but peer.publicUrl is ${origin}: other boxes would call the wrong address`);
  return `${head}; this box is listed (#${entry.id}, db=${entry.boxHost})`;
}
