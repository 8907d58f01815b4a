// The screening API (SCREENING-API.md) on the consumer's user listener, behind the PSC session:
// batches (JSON or CSV), their progress (JSON and Server-Sent Events), verdicts, deferrals, results.
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fastifySSE as fastifySse } from '@fastify/sse';
import { HttpProblem } from '../http/problem.js';
import type { AuditLog } from '../store/audit.js';
import { requireClinician } from '../trust/psc-login.js';
import type { TokenSealer } from '../trust/token-seal.js';
import type { CallSessionStore } from '../consumer/call-sessions.js';
import type { StudyCache } from '../consumer/study-cache.js';
import type { ScreeningRepository } from './repository.js';
import type { ScreeningBatchRow, ScreeningCaseRow } from './schema.js';
import { pinOwner, type PrefetchEngine, type Resolved } from './prefetch.js';
import { checkRows, csvRows, jsonRows, type CheckedRow } from './rows.js';
import { diagnosticReport, resultRows, resultsCsv, stats } from './results.js';
import type { BatchTokens } from './tokens.js';
import { checkDeferral, checkVerdict } from './verdict.js';
import { batchView, caseView } from './views.js';
import type { Batch, Case, Verdict } from './types.js';

export interface ScreeningRoutesOptions {
  repo: ScreeningRepository;
  engine: PrefetchEngine;
  tokens: BatchTokens;
  calls: CallSessionStore;
  cache: StudyCache;
  sealer: TokenSealer;
  audit: AuditLog;
  /** the cache budget and the estimated size of one exam: a batch that cannot fit is refused */
  cacheMaxBytes: number;
  examBytesEstimate: number;
  /** the box's own origin: a state-changing request from another origin is refused */
  boxOrigin: string;
}

type P = { id: string; caseId?: string };
/** a batch of 10,000 rows, CSV or JSON, stays well under this */
const CSV_LIMIT = 8 * 1024 * 1024;
const SESSION_MARGIN_MS = 10 * 60_000;
const fmtBytes = (n: number) => n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1).replace('.', ',')} Go` : `${Math.round(n / 1024 ** 2)} Mo`;

export async function screeningRoutes(app: FastifyInstance, o: ScreeningRoutesOptions): Promise<void> {
  const { repo, engine, audit } = o;
  await app.register(fastifySse, { heartbeatInterval: 15_000 });
  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'buffer', bodyLimit: CSV_LIMIT }, (_req, body, done) => done(null, body));
  app.addHook('preHandler', requireClinician);
  const ownOrigin = new URL(o.boxOrigin).origin;
  app.addHook('preHandler', async (req) => {
    // a page of another site may not act in the reader's name (the cookie is SameSite=Lax; this is the second lock)
    if (req.method !== 'GET' && req.method !== 'HEAD' && typeof req.headers.origin === 'string' && req.headers.origin !== ownOrigin) {
      throw new HttpProblem(403, 'Origine refusée', "cette action ne peut venir que des pages de cette DRIMbox");
    }
  });

  const me = (req: FastifyRequest) => req.clinicianSession!.clinician;
  /** open event streams: ended when the box closes (an open stream would hold the listener open) */
  const streams = new Set<FastifyReply>();
  app.addHook('preClose', async () => { for (const r of streams) r.sse.close(); });

  /**
   * Who sees a batch (deny by default): its creator (every case), and a reader with cases assigned to
   * them (their cases and the unassigned ones: those they may read). Anyone else is told it does not
   * exist, as for an unknown id. There is no screening-admin role in the PSC claims or the config.
   */
  const assignedTo = (c: ScreeningCaseRow) => (JSON.parse(c.row_json) as CheckedRow).readerRpps;
  const isCreator = (req: FastifyRequest, b: ScreeningBatchRow) => b.created_by_rpps === me(req).rpps;
  const seesCase = (req: FastifyRequest, b: ScreeningBatchRow, c: ScreeningCaseRow) => {
    if (isCreator(req, b)) return true;
    const to = assignedTo(c);
    return !to || to === me(req).rpps;
  };
  const visibleCases = async (req: FastifyRequest, b: ScreeningBatchRow) => (await repo.cases(b.id)).filter((c) => seesCase(req, b, c));
  async function batchOr404(req: FastifyRequest): Promise<ScreeningBatchRow> {
    const b = await repo.batch((req.params as P).id);
    if (!b || !(isCreator(req, b) || (await repo.batchesReadBy(me(req).rpps, b.id)).has(b.id))) {
      throw new HttpProblem(404, 'Lot inconnu', "ce lot de lecture n'existe pas (ou plus), ou vous n'en êtes ni le créateur ni un lecteur désigné");
    }
    return b;
  }
  async function caseOr404(req: FastifyRequest, b: ScreeningBatchRow): Promise<ScreeningCaseRow> {
    const c = await repo.case(b.id, (req.params as P).caseId!);
    if (!c) throw new HttpProblem(404, 'Dossier inconnu', "ce dossier ne fait pas partie du lot");
    if (!seesCase(req, b, c)) throw new HttpProblem(403, 'Dossier attribué', 'ce dossier est attribué à un autre lecteur');
    return c;
  }
  const view = async (b: ScreeningBatchRow): Promise<Batch> => batchView(b, (await repo.totals(b.id)).get(b.id));
  const creatorOnly = (req: FastifyRequest, b: ScreeningBatchRow) => {
    if (b.created_by_rpps !== me(req).rpps) throw new HttpProblem(403, 'Action réservée', `seul(e) ${b.created_by_name}, qui a créé le lot, peut le piloter`);
  };

  /** The reader's own viewer session of a ready case (created, or again once expired). */
  async function sessionFor(c: ScreeningCaseRow, req: FastifyRequest): Promise<string | undefined> {
    if (c.state !== 'ready' || !c.resolved_json) return undefined;
    const { rpps, name } = me(req);
    const ctx = `screening-session|${c.id}|${rpps}`;
    const have = await repo.session(c.id, rpps);
    if (have && Date.parse(have.expires_at) - Date.now() > SESSION_MARGIN_MS) {
      const id = o.sealer.open(have.session_sealed, ctx);
      if (id && await o.calls.get(id, rpps)) return id;
    }
    const r = JSON.parse(c.resolved_json) as Resolved;
    const row = JSON.parse(c.row_json) as CheckedRow;
    const [kosFamily = '', kosGiven = ''] = (r.patient?.name ?? '').split('^');
    const created = await o.calls.create({
      rpps, clinician: { name, rpps }, studies: r.studies,
      patient: {
        birthName: row.familyName ?? kosFamily, givenNames: (row.givenName ?? kosGiven).split(/\s+/).filter(Boolean), birthDate: row.birthDate,
        sex: row.sex as 'F' | 'M' | 'U', ins: { value: row.ins, oid: row.insOid },
      },
    }, r.reports.map((x) => ({ id: x.id, mediaType: x.mediaType, data: Buffer.from(x.data, 'base64') })));
    await repo.putSession({ case_id: c.id, rpps, session_sealed: o.sealer.seal(created.id, ctx), expires_at: new Date(created.expiresAt).toISOString() });
    return created.id;
  }
  const caseDoc = async (c: ScreeningCaseRow, req: FastifyRequest): Promise<Case> => caseView(c, await sessionFor(c, req));

  // ---------- batches ----------
  app.post('/api/screening/batches', { bodyLimit: CSV_LIMIT }, async (req, reply) => {
    const type = String(req.headers['content-type'] ?? '');
    const q = req.query as Record<string, string | undefined>;
    let meta: { name?: unknown; dueDate?: unknown; priorsWanted?: unknown };
    let rows;
    if (/^(text|application)\/csv/.test(type)) {
      rows = csvRows(req.body as Buffer);
      meta = { name: q.name, dueDate: q.dueDate, priorsWanted: q.priorsWanted === undefined ? undefined : Number(q.priorsWanted) };
    } else {
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body !== 'object' || Array.isArray(body)) throw new HttpProblem(400, 'Lot refusé', 'un objet JSON { name, rows } est attendu');
      rows = jsonRows(body.rows);
      meta = body;
    }
    const name = typeof meta.name === 'string' && meta.name.trim() ? meta.name.trim().slice(0, 120) : undefined;
    if (!name) throw new HttpProblem(400, 'Lot refusé', 'name : le nom du lot est obligatoire');
    const priors = meta.priorsWanted === undefined ? 1 : meta.priorsWanted;
    if (typeof priors !== 'number' || !Number.isInteger(priors) || priors < 0 || priors > 5) throw new HttpProblem(400, 'Lot refusé', 'priorsWanted : un entier de 0 à 5');
    const due = meta.dueDate;
    if (due !== undefined && (typeof due !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(due) || Number.isNaN(Date.parse(due)))) throw new HttpProblem(400, 'Lot refusé', 'dueDate : une date AAAA-MM-JJ');
    const checked = checkRows(rows);
    // the budget: every exam and its priors pinned until the batch is closed, beside the other open batches
    const fetchable = checked.filter((r) => !r.error).length;
    const needed = fetchable * (1 + priors) * o.examBytesEstimate;
    const available = Math.max(0, o.cacheMaxBytes - await repo.openBatchBytes());
    if (needed > available) {
      throw new HttpProblem(422, 'Cache insuffisant', `le lot demande environ ${fmtBytes(needed)} (${fetchable} examens et ${priors} antériorité(s) chacun, ${fmtBytes(o.examBytesEstimate)} par examen) ; le cache n'a que ${fmtBytes(available)} disponibles sur ${fmtBytes(o.cacheMaxBytes)}`,
        { neededBytes: needed, availableBytes: available, cacheMaxBytes: o.cacheMaxBytes });
    }
    const s = req.clinicianSession!;
    const id = randomBytes(9).toString('base64url');
    const batch: ScreeningBatchRow = {
      id, name, state: 'prefetching', pause_reason: null, created_at: new Date().toISOString(), created_by_rpps: s.clinician.rpps,
      created_by_name: s.clinician.name, due_date: (due as string | undefined) ?? null, priors_wanted: priors, closed_at: null,
      tokens_sealed: o.tokens.seal(id, { accessToken: s.accessToken, ...(s.accessTokenExpiresAt !== undefined ? { accessTokenExpiresAt: s.accessTokenExpiresAt } : {}), ...(s.refreshToken ? { refreshToken: s.refreshToken } : {}) }),
    };
    await repo.createBatch(batch, checked.map((r, i) => ({
      id: randomUUID(), batch_id: id, position: i + 1, state: r.error ? 'failed' : 'queued', error: r.error ?? null, retryable: 0, attempts: 0,
      next_attempt_at: null, row_json: JSON.stringify(r), source: null, resolved_json: null, instances_done: 0, instances_total: 0, bytes_done: 0,
      verdict_json: null, verdict_request_id: null, deferral_json: null,
    })));
    audit.record({ direction: 'user', actorRpps: s.clinician.rpps, route: `screening:${id}`, method: 'CREATE', status: 201, outcome: `${checked.length} rows, ${checked.length - fetchable} refused` });
    engine.kick();
    if (fetchable === 0) await repo.updateBatch(id, { state: 'ready' });
    return reply.code(201).send(await view((await repo.batch(id))!));
  });

  app.get('/api/screening/batches', async (req) => {
    const totals = await repo.totals();
    const reads = await repo.batchesReadBy(me(req).rpps);
    return (await repo.batches()).filter((b) => isCreator(req, b) || reads.has(b.id)).map((b) => batchView(b, totals.get(b.id)));
  });

  app.get('/api/screening/batches/:id', async (req) => {
    const b = await batchOr404(req);
    const cases = await visibleCases(req, b);
    const docs: Case[] = [];
    for (const c of cases) docs.push(await caseDoc(c, req));
    return { ...await view(b), cases: docs };
  });

  /** state changes: from which states, to which, and what else happens */
  const transition = (path: string, from: string[], to: string, after?: (b: ScreeningBatchRow, req: FastifyRequest) => Promise<void>) =>
    app.post(`/api/screening/batches/:id/${path}`, async (req) => {
      const b = await batchOr404(req);
      creatorOnly(req, b);
      const patch: Partial<ScreeningBatchRow> = { state: to, pause_reason: null, ...(to === 'closed' ? { closed_at: new Date().toISOString() } : {}) };
      if (path === 'resume') {
        // the creator is here, logged in: the prefetch acts under this session's tokens from now on
        const s = req.clinicianSession!;
        patch.tokens_sealed = o.tokens.seal(b.id, { accessToken: s.accessToken, ...(s.accessTokenExpiresAt !== undefined ? { accessTokenExpiresAt: s.accessTokenExpiresAt } : {}), ...(s.refreshToken ? { refreshToken: s.refreshToken } : {}) });
      }
      if (!(await repo.updateBatch(b.id, patch, from))) {
        if (b.state === to) return view(b);
        throw new HttpProblem(409, 'Action impossible', `le lot est « ${b.state} » : ${path} n'est possible que depuis ${from.join(', ')}`);
      }
      audit.record({ direction: 'user', actorRpps: me(req).rpps, route: `screening:${b.id}`, method: path.toUpperCase(), status: 200 });
      await after?.(b, req);
      engine.events.batch(b.id);
      return view((await repo.batch(b.id))!);
    });
  transition('pause', ['prefetching', 'psc-reconnect'], 'paused');
  transition('resume', ['paused', 'psc-reconnect'], 'prefetching', async (b) => { await engine.sweep(b.id); engine.kick(); });
  transition('cancel', ['prefetching', 'paused', 'psc-reconnect', 'ready'], 'cancelled', async (b) => { await o.cache.unpin(pinOwner(b.id)); });
  transition('close', ['prefetching', 'paused', 'psc-reconnect', 'ready', 'cancelled'], 'closed', async (b) => { await o.cache.unpin(pinOwner(b.id)); });

  app.delete('/api/screening/batches/:id', async (req, reply) => {
    const b = await batchOr404(req);
    creatorOnly(req, b);
    // stop the prefetch first: its cases must not land again after the pins went
    await repo.updateBatch(b.id, { state: 'cancelled' });
    await repo.deleteBatch(b.id);
    await o.cache.unpin(pinOwner(b.id));
    audit.record({ direction: 'user', actorRpps: me(req).rpps, route: `screening:${b.id}`, method: 'DELETE', status: 204 });
    engine.events.batch(b.id);
    return reply.code(204).send();
  });

  // ---------- progress as Server-Sent Events ----------
  app.get('/api/screening/batches/:id/events', { sse: 'only' }, async (req, reply) => {
    const b = await batchOr404(req);
    reply.sse.keepAlive();
    streams.add(reply);
    let batchTimer: NodeJS.Timeout | undefined;
    const pendingCases = new Set<string>();
    let sending = Promise.resolve();
    const send = (fn: () => Promise<void>) => { sending = sending.then(fn).catch(() => undefined); };
    const sendBatch = async () => {
      const now = await repo.batch(b.id);
      if (now && reply.sse.isConnected) await reply.sse.send({ event: 'batch', data: await view(now) });
    };
    const onCase = (batchId: string, caseId: string) => {
      if (batchId !== b.id || pendingCases.has(caseId)) return;
      pendingCases.add(caseId);
      send(async () => {
        pendingCases.delete(caseId);
        const c = await repo.case(b.id, caseId);
        if (c && seesCase(req, b, c) && reply.sse.isConnected) await reply.sse.send({ event: 'case', data: await caseDoc(c, req) });
      });
    };
    // a batch event per change would be one per instance landed: at most 4 a second
    const onBatch = (batchId: string) => {
      if (batchId !== b.id || batchTimer) return;
      batchTimer = setTimeout(() => { batchTimer = undefined; send(sendBatch); }, 250);
    };
    engine.events.on('case', onCase);
    engine.events.on('batch', onBatch);
    reply.sse.onClose(() => {
      streams.delete(reply);
      engine.events.off('case', onCase);
      engine.events.off('batch', onBatch);
      clearTimeout(batchTimer);
    });
    send(async () => {
      await sendBatch();
      for (const c of await visibleCases(req, b)) if (reply.sse.isConnected) await reply.sse.send({ event: 'case', data: await caseDoc(c, req) });
    });
    await sending;
  });

  // ---------- reading ----------
  const readable = (b: ScreeningBatchRow) => {
    if (b.state === 'closed') throw new HttpProblem(409, 'Lot clos', "le lot est clos : les avis n'y sont plus modifiables");
    if (b.state === 'cancelled') throw new HttpProblem(409, 'Lot annulé', 'le lot est annulé');
  };
  const assigned = (req: FastifyRequest, c: ScreeningCaseRow) => {
    const row = JSON.parse(c.row_json) as CheckedRow;
    if (row.readerRpps && row.readerRpps !== me(req).rpps) throw new HttpProblem(403, 'Dossier attribué', 'ce dossier est attribué à un autre lecteur');
  };
  const auditVerdict = (req: FastifyRequest, b: ScreeningBatchRow, c: ScreeningCaseRow, method: string, status: number, outcome?: string) => {
    const row = JSON.parse(c.row_json) as CheckedRow;
    audit.record({ direction: 'user', actorRpps: me(req).rpps, route: `screening:${b.id}/verdict`, method, patientId: row.ins, studyUid: caseView(c).studyUid, status, outcome });
  };

  app.post('/api/screening/batches/:id/cases/:caseId/verdict', async (req, reply) => {
    const b = await batchOr404(req);
    readable(b);
    const c = await caseOr404(req, b);
    assigned(req, c);
    const input = checkVerdict(req.body);
    if (c.state !== 'ready') throw new HttpProblem(409, 'Dossier non prêt', "les images de ce dossier ne sont pas encore disponibles : il ne peut pas être lu");
    const { requestId, ...rest } = input;
    const who = me(req);
    const verdict: Verdict = { ...rest, readerRpps: who.rpps, readerName: who.name, recordedAt: new Date().toISOString() };
    if (await repo.recordVerdict(c.id, requestId, JSON.stringify(verdict))) {
      auditVerdict(req, b, c, 'VERDICT', 201, verdict.outcome);
      engine.events.case(b.id, c.id);
      return reply.code(201).send(verdict);
    }
    const now = (await repo.case(b.id, c.id))!;
    // the same keystroke arriving twice (double click, a retried request): the verdict it recorded
    if (now.verdict_request_id === requestId && now.verdict_json) return reply.code(200).send(JSON.parse(now.verdict_json));
    const other = JSON.parse(now.verdict_json!) as Verdict;
    throw new HttpProblem(409, 'Avis déjà enregistré', `un avis a déjà été enregistré pour ce dossier par ${other.readerName} le ${other.recordedAt} : modifiez-le (PUT) plutôt que d'en ajouter un second`);
  });

  app.put('/api/screening/batches/:id/cases/:caseId/verdict', async (req) => {
    const b = await batchOr404(req);
    readable(b);
    const c = await caseOr404(req, b);
    if (!c.verdict_json) throw new HttpProblem(404, 'Aucun avis', "ce dossier n'a pas encore d'avis à modifier");
    const before = JSON.parse(c.verdict_json) as Verdict;
    if (before.readerRpps !== me(req).rpps) throw new HttpProblem(403, 'Avis d’un autre lecteur', `seul(e) ${before.readerName} peut modifier son avis`);
    const { requestId, ...rest } = checkVerdict(req.body);
    const verdict: Verdict = { ...rest, readerRpps: before.readerRpps, readerName: before.readerName, recordedAt: before.recordedAt, amendedAt: new Date().toISOString() };
    await repo.updateCase(c.id, { verdict_json: JSON.stringify(verdict), verdict_request_id: requestId });
    auditVerdict(req, b, c, 'AMEND', 200, verdict.outcome);
    engine.events.case(b.id, c.id);
    return verdict;
  });

  app.delete('/api/screening/batches/:id/cases/:caseId/verdict', async (req, reply) => {
    const b = await batchOr404(req);
    readable(b);
    const c = await caseOr404(req, b);
    if (!c.verdict_json) throw new HttpProblem(404, 'Aucun avis', "ce dossier n'a pas d'avis à annuler");
    const before = JSON.parse(c.verdict_json) as Verdict;
    if (before.readerRpps !== me(req).rpps) throw new HttpProblem(403, 'Avis d’un autre lecteur', `seul(e) ${before.readerName} peut annuler son avis`);
    await repo.updateCase(c.id, { verdict_json: null, verdict_request_id: null });
    auditVerdict(req, b, c, 'UNDO', 204);
    engine.events.case(b.id, c.id);
    return reply.code(204).send();
  });

  app.post('/api/screening/batches/:id/cases/:caseId/defer', async (req) => {
    const b = await batchOr404(req);
    readable(b);
    const c = await caseOr404(req, b);
    assigned(req, c);
    const d = checkDeferral(req.body);
    await repo.updateCase(c.id, { deferral_json: JSON.stringify({ ...d, at: new Date().toISOString() }) });
    auditVerdict(req, b, c, 'DEFER', 200, d.reason);
    engine.events.case(b.id, c.id);
    return caseDoc((await repo.case(b.id, c.id))!, req);
  });

  app.delete('/api/screening/batches/:id/cases/:caseId/defer', async (req, reply) => {
    const b = await batchOr404(req);
    readable(b);
    const c = await caseOr404(req, b);
    await repo.updateCase(c.id, { deferral_json: null });
    engine.events.case(b.id, c.id);
    return reply.code(204).send();
  });

  // ---------- results ----------
  app.get('/api/screening/batches/:id/results.csv', async (req, reply) => {
    const b = await batchOr404(req);
    const csv = resultsCsv(resultRows(b, await visibleCases(req, b)));
    return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="lot-${b.id}-resultats.csv"`).header('cache-control', 'no-store').send(csv);
  });
  app.get('/api/screening/batches/:id/results.json', async (req, reply) => {
    const b = await batchOr404(req);
    return reply.header('cache-control', 'no-store').send(resultRows(b, await visibleCases(req, b)));
  });
  app.get('/api/screening/batches/:id/cases/:caseId/result', async (req, reply) => {
    const b = await batchOr404(req);
    const c = await caseOr404(req, b);
    const doc = diagnosticReport(b, c);
    if (!doc) throw new HttpProblem(404, 'Dossier non lu', "ce dossier n'a pas encore d'avis");
    return reply.type('application/fhir+json').header('cache-control', 'no-store').send(doc);
  });
  app.get('/api/screening/batches/:id/stats', async (req) => {
    const b = await batchOr404(req);
    return stats(await visibleCases(req, b));
  });
}


