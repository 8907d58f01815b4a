// The enrolment registry: boxes enrol over mTLS (identity = their client certificate), an operator
// approves, revokes (after an explicit confirmation) or re-approves, and the registry publishes the signed allow-list at GET /allowlist.xml,
// regenerated on every change. HTTPS only; client certificates are requested on every connection and
// required where identity matters (enrolment).
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { X509Certificate, timingSafeEqual, createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { sendProblem } from '../../gateway/src/http/problem.js';
import { openRegistryDb, type RegistryDb } from './db.js';
import { EnrolmentRepository, type Enrolment } from './enrolments.js';
import { buildAllowListXml, signAllowList } from './allowlist-document.js';
import { adminPage } from './admin-page.js';
import { serverTls } from '../../gateway/src/http/tls.js';

export interface RegistryOptions {
  tls: {
    certPem: string;
    keyPem: string;
    /** CA(s) whose certificates boxes enrol with (the network's operator CA). */
    clientCaPem: string | string[];
  };
  /** Allow-list signing key and certificate chain (signer first); the chain goes into KeyInfo. */
  signer: { keyPem: string; chainPem: string | string[] };
  /** Bearer credential of the operator admin API. */
  adminToken: string;
  /** SQLite file (or ':memory:'). */
  dbFile: string;
  /** Demo only: approve every enrolment at once. */
  autoApprove?: boolean;
  /** pino logger instance, or false to log nothing (default). */
  logger?: Logger | boolean;
}

export interface RegistryApp {
  app: FastifyInstance;
  repo: EnrolmentRepository;
  /** The signed list currently served. */
  currentAllowList(): string;
}

const HOST_RE = /^(?=.{1,253}(:\d{1,5})?$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/i;
const ENROL_FIELDS = new Set(['boxHost', 'viewerHost', 'operatorName', 'supportContact']);

function rfc2253(nodeSubject: string): string {
  return nodeSubject.split('\n').filter(Boolean).reverse().join(',');
}

function peerCertificate(req: FastifyRequest): X509Certificate | undefined {
  const sock = req.raw.socket as TLSSocket;
  if (!sock.authorized) return undefined;
  return sock.getPeerX509Certificate?.() ?? undefined;
}

function publicView(e: Enrolment) {
  return {
    id: e.id, status: e.status, dn: e.dn, boxHost: e.boxHost, viewerHost: e.viewerHost, operatorName: e.operatorName,
    supportContact: e.supportContact, createdAt: e.createdAt, updatedAt: e.updatedAt, decidedBy: e.decidedBy,
  };
}

/** Validate the enrolment body; returns the clean fields or a reason. The DN is never read from it. */
function readEnrolBody(body: unknown): { ok: true; v: { boxHost: string; viewerHost?: string; operatorName: string; supportContact?: string } } | { ok: false; reason: string } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { ok: false, reason: 'a JSON object is required' };
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !ENROL_FIELDS.has(k));
  if (unknown.length) return { ok: false, reason: `unknown field(s): ${unknown.join(', ')} (the certificate DN comes from the TLS client certificate)` };
  const str = (k: string, max: number, required: boolean): string | undefined | Error => {
    const v = b[k];
    if (v === undefined || v === null || v === '') return required ? new Error(`${k} is required`) : undefined;
    if (typeof v !== 'string' || v.length > max || /[\u0000-\u001f]/.test(v)) return new Error(`${k} must be a string of at most ${max} characters`);
    return v.trim();
  };
  const boxHost = str('boxHost', 260, true);
  const viewerHost = str('viewerHost', 260, false);
  const operatorName = str('operatorName', 200, true);
  const supportContact = str('supportContact', 200, false);
  for (const v of [boxHost, viewerHost, operatorName, supportContact]) if (v instanceof Error) return { ok: false, reason: v.message };
  if (!HOST_RE.test(boxHost as string)) return { ok: false, reason: 'boxHost must be a host name (optionally host:port)' };
  if (viewerHost && !HOST_RE.test(viewerHost as string)) return { ok: false, reason: 'viewerHost must be a host name (optionally host:port)' };
  return {
    ok: true,
    v: { boxHost: (boxHost as string).toLowerCase(), viewerHost: (viewerHost as string | undefined)?.toLowerCase(), operatorName: operatorName as string, supportContact: supportContact as string | undefined },
  };
}

export async function createRegistryApp(opts: RegistryOptions, db: RegistryDb = openRegistryDb(opts.dbFile)): Promise<RegistryApp> {
  if (!opts.adminToken || opts.adminToken.length < 16) throw new Error('registry adminToken must be at least 16 characters');
  const log = opts.logger ?? false;
  const app = Fastify({
    ...(typeof log === 'boolean' ? { logger: log } : { loggerInstance: log }),
    https: {
      cert: opts.tls.certPem,
      key: opts.tls.keyPem,
      ca: opts.tls.clientCaPem,
      requestCert: true,
      rejectUnauthorized: false, // the list and the admin API are reachable without a client certificate
      ...serverTls,
    },
  }) as unknown as FastifyInstance;
  const repo = new EnrolmentRepository(db);
  app.addHook('onClose', async () => db.close());

  let signedList = '';
  const regenerate = () => {
    signedList = signAllowList(buildAllowListXml(repo.list('approved')), opts.signer);
    app.log.info({ entries: repo.list('approved').length }, 'allow-list regenerated and signed');
  };
  regenerate();

  const adminToken = Buffer.from(opts.adminToken);
  const requireAdmin = async (req: FastifyRequest, reply: FastifyReply) => {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    const given = Buffer.from(m ? m[1] : '');
    if (!m || given.length !== adminToken.length || !timingSafeEqual(given, adminToken)) {
      return sendProblem(reply.header('www-authenticate', 'Bearer realm="registry-admin"'), 401, 'Unauthorized', 'operator credential required (Authorization: Bearer …)');
    }
  };

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) app.log.error({ err }, 'registry error');
    return sendProblem(reply, status, status === 500 ? 'Internal Server Error' : 'Bad Request', status === 500 ? 'unexpected error' : err.message);
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, 404, 'Not Found', `no route ${req.method} ${req.url.split('?')[0]}`));

  app.get('/allowlist.xml', async (_req, reply) => reply.type('application/xml; charset=utf-8').header('cache-control', 'no-cache').send(signedList));
  app.get('/healthz', async () => ({ ok: true, approved: repo.list('approved').length, pending: repo.list('pending').length }));
  app.get('/', async (_req, reply) => reply.redirect('/admin'));
  app.get('/admin', async (_req, reply) => reply.type('text/html; charset=utf-8')
    .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
    .send(adminPage()));

  // --- boxes ------------------------------------------------------------------------------------
  app.post('/enrolments', async (req, reply) => {
    const cert = peerCertificate(req);
    if (!cert) return sendProblem(reply, 401, 'Client certificate required', 'enrol over mutual TLS with the box certificate issued by the network CA');
    const body = readEnrolBody(req.body);
    if (!body.ok) return sendProblem(reply, 400, 'Invalid enrolment', body.reason);
    const dn = rfc2253(cert.subject);
    const fp = createHash('sha256').update(cert.raw).digest('hex');
    const alive = repo.active();
    const mine = alive.find((e) => e.dn === dn);
    if (mine) {
      const same = mine.boxHost === body.v.boxHost && (mine.viewerHost ?? undefined) === body.v.viewerHost
        && mine.operatorName === body.v.operatorName && (mine.supportContact ?? undefined) === body.v.supportContact;
      if (same) return reply.code(200).send(publicView(mine));
      return sendProblem(reply, 409, 'Already enrolled', `an enrolment (#${mine.id}, ${mine.status}) exists for ${dn}; ask the operator to revoke it first`, { id: mine.id });
    }
    const taken = alive.find((e) => e.boxHost === body.v.boxHost);
    if (taken) return sendProblem(reply, 409, 'Host already enrolled', `${body.v.boxHost} is enrolled by another certificate`);
    const created = repo.create({ dn, certSha256: fp, ...body.v, status: opts.autoApprove ? 'approved' : 'pending', decidedBy: opts.autoApprove ? 'auto-approve' : undefined });
    app.log.info({ id: created.id, dn, boxHost: created.boxHost, status: created.status }, 'enrolment received');
    if (created.status === 'approved') regenerate();
    return reply.code(201).header('location', `/enrolments/${created.id}`).send(publicView(created));
  });

  /** A box reads its own enrolment (identity from its client certificate). */
  app.get('/enrolments/self', async (req, reply) => {
    const cert = peerCertificate(req);
    if (!cert) return sendProblem(reply, 401, 'Client certificate required');
    const dn = rfc2253(cert.subject);
    const mine = repo.list().filter((e) => e.dn === dn).pop();
    return mine ? publicView(mine) : sendProblem(reply, 404, 'Not enrolled', `no enrolment for ${dn}`);
  });

  // --- operator -----------------------------------------------------------------------------------
  app.get('/enrolments', { preHandler: requireAdmin }, async (req, reply) => {
    const status = (req.query as Record<string, string>).status;
    if (status && !['pending', 'approved', 'revoked'].includes(status)) return sendProblem(reply, 400, 'Bad Request', 'status must be pending, approved or revoked');
    return repo.list(status as never).map(publicView);
  });

  const enrolmentOf = (req: FastifyRequest) => {
    const id = Number((req.params as { id: string }).id);
    return Number.isInteger(id) ? repo.get(id) : undefined;
  };
  const change = (e: Enrolment, to: 'approved' | 'revoked') => {
    if (e.status === to) return publicView(e);
    const updated = repo.setStatus(e.id, to, 'operator')!;
    app.log.info({ id: e.id, dn: e.dn, from: e.status, status: to }, 'enrolment decided');
    regenerate();
    return publicView(updated);
  };

  /** Approves a pending enrolment, or re-approves a revoked one (undoing a revocation). */
  app.post('/enrolments/:id/approve', { preHandler: requireAdmin }, async (req, reply) => {
    const e = enrolmentOf(req);
    if (!e) return sendProblem(reply, 404, 'Not Found', `no enrolment ${(req.params as { id: string }).id}`);
    if (e.status === 'revoked') {
      // the box may have enrolled again since: two live enrolments for one certificate or host would be ambiguous
      const clash = repo.active().find((o) => o.id !== e.id && (o.dn === e.dn || o.boxHost === e.boxHost));
      if (clash) return sendProblem(reply, 409, 'Enrolled again', `enrolment #${clash.id} (${clash.status}) now holds ${clash.dn === e.dn ? 'this certificate' : 'this host'}; decide on it instead`, { id: clash.id });
    }
    return change(e, 'approved');
  });

  /**
   * Revokes an enrolment: the box leaves the next allow-list. Asks for an explicit confirmation
   * (`{"confirm": "<boxHost>"}`), since every box of the network refuses it once it refreshes.
   */
  app.post('/enrolments/:id/revoke', { preHandler: requireAdmin }, async (req, reply) => {
    const e = enrolmentOf(req);
    if (!e) return sendProblem(reply, 404, 'Not Found', `no enrolment ${(req.params as { id: string }).id}`);
    if (e.status === 'revoked') return publicView(e);
    const confirm = (req.body as { confirm?: unknown } | undefined)?.confirm;
    if (typeof confirm !== 'string' || confirm.trim().toLowerCase() !== e.boxHost) {
      return sendProblem(reply, 428, 'Confirmation required',
        `revoking #${e.id} (${e.boxHost}, ${e.dn}) removes it from the allow-list; send {"confirm": "${e.boxHost}"} to confirm`,
        { id: e.id, boxHost: e.boxHost, dn: e.dn });
    }
    return change(e, 'revoked');
  });

  return { app, repo, currentAllowList: () => signedList };
}

export interface StartedRegistry {
  /** Base URL, e.g. https://127.0.0.1:8440 */
  url: string;
  /** `${url}/allowlist.xml` */
  allowListUrl: string;
  app: FastifyInstance;
  repo: EnrolmentRepository;
  close(): Promise<void>;
}

/** Start the registry on `host:port` (default 127.0.0.1, a free port). */
export async function startRegistry(opts: RegistryOptions & { host?: string; port?: number }): Promise<StartedRegistry> {
  const { app, repo } = await createRegistryApp(opts);
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port ?? 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { url, allowListUrl: `${url}/allowlist.xml`, app, repo, close: () => app.close() };
}
