// What the viewer reads for one session (user listener, PSC session required, the session private to
// its clinician): the session document, the reports, the import action, and a DICOMweb service
// (QIDO-RS, WADO-RS, metadata, frames) over the session's studies, served from the study cache and
// filling it on a miss. Every access is audited (RPPS, INS, study, bytes, result).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { DicomJson, Pacs } from '../pacs/pacs.js';
import { NotAcceptableError, NotFoundError } from '../pacs/pacs.js';
import { acceptedFrameSyntaxes, acceptedTransferSyntaxes, acceptsDicomJson, prefersSinglePartFrame } from '../dicom/accept.js';
import { storedIsAcceptable } from '../dicom/transfer-syntax.js';
import { sendMultipart, sendSinglePart } from '../http/multipart-reply.js';
import { HttpProblem } from '../http/problem.js';
import type { AuditLog } from '../store/audit.js';
import { requireClinician } from '../trust/psc-login.js';
import { callKey, type CallSession, type CallSessionStore } from './call-sessions.js';
import type { SessionDocument } from './session-document.js';
import { PeerCertificateRevokedError, PeerNotAllowedError, PeerStatusError, PeerUnavailableError, peerRefusalKind, type PeerClient } from './peer-client.js';
import { identityProblem, IdentityMismatchError } from './instance-check.js';
import { dicomWebRootOf, type SessionStudy } from './dmp-search.js';
import { mergeWarnings, traitDifferences } from './identity-check.js';
import { seriesOfInstance, seriesSpec, seriesSpecs } from './series-specs.js';
import type { OpenedInstance, SeriesHandle, SeriesSpec, StudyCache } from './study-cache.js';
import type { ImportJobs } from './import-jobs.js';
import { exportRoutes } from './export-routes.js';
import { measurementRoutes } from './measurement-routes.js';

export interface ViewerApiOptions {
  calls: CallSessionStore;
  cache: StudyCache;
  peer: PeerClient;
  audit: AuditLog;
  imports: ImportJobs;
  /** the box's own PACS: measurements saved with imported exams are read back from it */
  localPacs?: Pacs;
  /** how long a source's "yes" to a (session, study) is trusted before asking again */
  grantTtlMs?: number;
}

interface AuditInfo {
  rpps?: string;
  ins?: string;
  study?: string;
  series?: string;
  instance?: string;
  kos?: string;
  startedAt: bigint;
  bytes: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    consumerAudit?: AuditInfo;
  }
}

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;
/** how long the session document and the report wait for a source to say whether a study is still there */
const STATUS_WAIT_MS = 3_000;
type P = { id: string; study?: string; series?: string; instance?: string; frames?: string; doc?: string; job?: string };

export async function viewerApi(app: FastifyInstance, o: ViewerApiOptions): Promise<void> {
  const { calls, cache, peer, audit, imports } = o;
  const grantTtl = o.grantTtlMs ?? 5 * 60_000;

  app.addHook('onRequest', async (req) => {
    req.consumerAudit = { startedAt: process.hrtime.bigint(), bytes: 0 };
  });
  app.addHook('preHandler', requireClinician);
  app.addHook('onSend', async (req, _reply, payload) => {
    if (req.consumerAudit && (typeof payload === 'string' || Buffer.isBuffer(payload))) req.consumerAudit.bytes = Buffer.byteLength(payload as string);
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    const a = req.consumerAudit;
    if (!a) return;
    audit.record({
      direction: 'user',
      actorRpps: a.rpps ?? req.clinicianSession?.clinician.rpps,
      route: req.routeOptions.url ?? req.url.split('?')[0],
      method: req.method,
      patientId: a.ins,
      studyUid: a.study,
      seriesUid: a.series,
      instanceUid: a.instance,
      kosUid: a.kos,
      status: reply.raw.writableFinished ? reply.statusCode : 499,
      outcome: req.problem?.slice(0, 300),
      bytes: a.bytes,
      durationMs: Number(process.hrtime.bigint() - a.startedAt) / 1e6,
    });
  });

  /** The caller's session (404 for another clinician's: its existence is not revealed). */
  async function session(req: FastifyRequest): Promise<CallSession> {
    const p = req.params as P;
    const rpps = req.clinicianSession!.clinician.rpps;
    const call = await calls.get(p.id, rpps);
    if (!call) throw new HttpProblem(404, 'Session inconnue', "cette session de visualisation n'existe pas, a expiré ou appartient à un autre utilisateur");
    req.consumerAudit!.rpps = rpps;
    req.consumerAudit!.ins = call.patient.ins.value;
    for (const k of ['study', 'series', 'instance'] as const) {
      const v = p[k];
      if (v !== undefined && (v.length > 64 || !UID.test(v))) throw new HttpProblem(400, 'Malformed UID', `${k} UID is not a valid DICOM UID`);
    }
    return call;
  }

  function studyOf(req: FastifyRequest, call: CallSession, studyUid: string): SessionStudy {
    const s = call.studies.find((x) => x.studyUid === studyUid);
    if (!s) throw new HttpProblem(404, 'Examen inconnu', "cet examen ne fait pas partie de la session de visualisation");
    req.consumerAudit!.study = s.studyUid;
    req.consumerAudit!.kos = s.kosUid;
    if (s.status === 'withdrawn') throw new HttpProblem(410, 'Examen retiré', s.problem ?? 'la source a retiré cet examen');
    if (s.status === 'unreachable') throw new HttpProblem(403, 'Source non autorisée', s.problem);
    if (s.status === 'refused') throw new HttpProblem(409, "Incohérence d'identité", s.problem);
    return s;
  }

  const token = (req: FastifyRequest) => req.clinicianSession!.accessToken;
  const rppsOf = (req: FastifyRequest) => req.clinicianSession!.clinician.rpps;
  /** the series a request reads stay in the cache until its answer ends */
  const leased = (reply: FastifyReply, h: SeriesHandle): SeriesHandle => {
    if (reply.raw.closed) h.release(); else reply.raw.once('close', () => h.release());
    return h;
  };

  /** Translates what the source box said into the viewer's statuses; remembers withdrawals and refusals. */
  async function peerProblem(e: unknown, call: CallSession, study: SessionStudy): Promise<never> {
    if (e instanceof HttpProblem) throw e;
    if (e instanceof IdentityMismatchError) {
      const why = `Incohérence d'identité : une image envoyée par la source n'est pas celle que le document de référence (KOS) désigne (${e.message}). L'examen n'est pas affiché.`;
      await calls.updateStudy(call.id, study.studyUid, { status: 'refused', problem: why });
      throw new HttpProblem(409, "Incohérence d'identité", why);
    }
    if (e instanceof PeerNotAllowedError) throw new HttpProblem(403, 'Source non autorisée', e.message);
    if (e instanceof PeerCertificateRevokedError) throw new HttpProblem(502, 'Certificat de la source révoqué', "le certificat de la DRIMbox source est révoqué par son autorité de certification, ou son statut de révocation est inconnu : l'examen n'est pas demandé");
    if (e instanceof PeerStatusError) {
      if (e.status === 404 || e.status === 410) {
        await calls.updateStudy(call.id, study.studyUid, { status: 'withdrawn', problem: 'la DRIMbox source ne sert plus cet examen' });
        throw new HttpProblem(410, 'Examen retiré', 'la DRIMbox source ne sert plus cet examen');
      }
      if (e.status === 401) {
        const kind = peerRefusalKind(e);
        // only the clinician's token, refused again after a renewal attempt, means the PSC session is over
        if (kind === 'token') throw new HttpProblem(401, 'Session PSC expirée', "la DRIMbox source a refusé le jeton Pro Santé Connect, qui n'a pas pu être renouvelé : reconnectez-vous");
        if (kind === 'certificate') throw new HttpProblem(502, 'Certificat de la DRIMbox refusé par la source', `la DRIMbox source n'accepte pas le certificat de cette DRIMbox (${e.detail}) : prévenez l'administrateur`);
        throw new HttpProblem(502, 'Accès refusé par la source', e.detail || 'la DRIMbox source a répondu 401');
      }
      if (e.status === 403) throw new HttpProblem(403, 'Accès refusé par la source', e.detail);
      throw new HttpProblem(502, 'Source indisponible', e.message);
    }
    if (e instanceof PeerUnavailableError) throw new HttpProblem(502, 'Source indisponible', e.message);
    throw e;
  }

  /**
   * Asks the source (once per session and study, then every grantTtl) whether the clinician may still
   * see the study: a revocation or withdrawal upstream is honoured even when the cache could answer.
   * When the source is unreachable, a study complete in the cache is still served. The grant is kept
   * in the database: whichever instance the next request reaches knows it.
   */
  async function checkGrant(req: FastifyRequest, call: CallSession, study: SessionStudy, o: { fresh?: boolean } = {}): Promise<DicomJson[] | undefined> {
    const g = o.fresh ? undefined : await calls.grant(call.id, study.studyUid);
    if (g && Date.now() - g.at < grantTtl) return g.series;
    const ask = (tokenValue: string) => peer.getJson<DicomJson[]>(`${study.sourceRoot}/studies/${study.studyUid}/series`, { token: tokenValue, kosUid: study.kosUid });
    try {
      let series: DicomJson[];
      try {
        series = await ask(token(req));
      } catch (e) {
        // the source refused the clinician's token: renew it once (PSC refresh token) and ask again
        if (!(e instanceof PeerStatusError && e.status === 401 && peerRefusalKind(e) === 'token')) throw e;
        const renewed = req.clinicianSession && await req.server.pscRefresh?.(req.clinicianSession);
        if (!renewed) throw e;
        req.clinicianSession = renewed;
        series = await ask(renewed.accessToken);
      }
      await calls.setGrant(call.id, study.studyUid, { at: Date.now(), series });
      return series;
    } catch (e) {
      audit.record({
        direction: 'peer-out', actorRpps: call.rpps, route: `${study.sourceRoot}/studies/:study/series`, method: 'GET', patientId: call.patient.ins.value,
        studyUid: study.studyUid, kosUid: study.kosUid, status: e instanceof PeerStatusError ? e.status : e instanceof PeerNotAllowedError ? 403 : 502,
        outcome: (e as Error).message.slice(0, 300),
      });
      if (e instanceof PeerUnavailableError && (await Promise.all(seriesSpecs(study).map((s) => cache.state(s)))).every((st) => st === 'complete')) {
        await calls.setGrant(call.id, study.studyUid, { at: Date.now() });
        return undefined;
      }
      return peerProblem(e, call, study);
    }
  }

  async function prepare(req: FastifyRequest, studyUid: string): Promise<{ call: CallSession; study: SessionStudy; rows?: DicomJson[] }> {
    const call = await session(req);
    const study = studyOf(req, call, studyUid);
    const rows = await checkGrant(req, call, study);
    return { call, study, rows };
  }

  function specOr404(req: FastifyRequest, study: SessionStudy, seriesUid: string): SeriesSpec {
    const spec = seriesSpec(study, seriesUid);
    if (!spec) throw new HttpProblem(404, 'Série inconnue', "le KOS ne référence pas cette série");
    req.consumerAudit!.series = seriesUid;
    return spec;
  }

  // ---------- session document, reports ----------
  /**
   * Asks the source, now, whether a study it served is still there: a withdrawal recorded after the
   * call is seen by the session document and the report route, not only by a later image request.
   * Returns the study as it now stands; a source that cannot be asked changes nothing.
   */
  async function currentStatus(req: FastifyRequest, call: CallSession, study: SessionStudy): Promise<SessionStudy> {
    if (study.status !== 'available') return study;
    // a slow or unreachable source does not hold the document back: its answer still lands in the session
    const asked = checkGrant(req, call, study, { fresh: true }).then(() => 'answered' as const, (e: unknown) => (e instanceof HttpProblem && e.status === 410 ? 'withdrawn' as const : 'answered' as const));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), STATUS_WAIT_MS); });
    const outcome = await Promise.race([asked, late]).finally(() => clearTimeout(timer));
    if (outcome !== 'withdrawn') return withImageTraits(call, study);
    return (await calls.get(call.id, call.rpps))?.studies.find((s) => s.studyUid === study.studyUid) ?? study;
  }

  /**
   * Once images of the study are in the cache, the call's traits are also compared with their own
   * headers (a PACS that labels them otherwise than the KOS): new differences are kept and audited.
   */
  async function withImageTraits(call: CallSession, study: SessionStudy): Promise<SessionStudy> {
    const [row] = await cache.store.findStudies({ StudyInstanceUID: study.studyUid }).catch(() => [] as DicomJson[]);
    if (!row) return study;
    const name = (row['00100010']?.Value?.[0] as { Alphabetic?: string } | undefined)?.Alphabetic;
    const found = traitDifferences(call.patient, { id: '', otherIds: [], name, birthDate: str(row, '00100030'), sex: str(row, '00100040') });
    const merged = mergeWarnings(study.identityWarnings ?? [], found);
    if (merged.length === (study.identityWarnings ?? []).length) return study;
    await calls.updateStudy(call.id, study.studyUid, { identityWarnings: merged });
    return { ...study, identityWarnings: merged };
  }

  app.get('/api/sessions/:id', async (req): Promise<SessionDocument> => {
    const call = await session(req);
    const base = `/api/sessions/${encodeURIComponent(call.id)}`;
    const studies = await Promise.all(call.studies.map((s) => currentStatus(req, call, s)));
    return {
      patient: call.patient,
      clinician: call.clinician,
      studies: studies.map((s) => ({
        studyUid: s.studyUid, date: s.date, ...(s.time ? { time: s.time } : {}), modalities: s.modalities, description: s.description,
        sourceCentre: s.sourceCentre, ...(s.accessionNumber ? { accessionNumber: s.accessionNumber } : {}), kosUid: s.kosUid,
        current: s.current, status: s.status,
        ...(s.status !== 'available' && s.problem ? { reason: s.problem } : {}),
        ...(s.identityWarnings?.length ? { identityWarnings: s.identityWarnings } : {}),
        // a withdrawn or refused study's report is not offered
        ...(s.status === 'available' && s.reportId && s.reportMediaType ? { report: { url: `${base}/reports/${encodeURIComponent(s.reportId)}`, mediaType: s.reportMediaType } } : {}),
      })),
      dicomWebRoot: `${base}/dicom-web`,
      importUrl: `${base}/import`,
      logoutUrl: '/auth/logout',
    };
  });

  app.get('/api/sessions/:id/reports/:doc', async (req, reply) => {
    const call = await session(req);
    const doc = (req.params as P).doc!;
    const study = call.studies.find((s) => s.reportId === doc);
    if (study) {
      req.consumerAudit!.study = study.studyUid;
      req.consumerAudit!.kos = study.kosUid;
      const now = await currentStatus(req, call, study);
      if (now.status === 'withdrawn') throw new HttpProblem(410, 'Compte rendu retiré', 'la source a retiré cet examen et son compte rendu');
      if (now.status === 'refused') throw new HttpProblem(409, "Incohérence d'identité", now.problem);
    }
    const r = await calls.report(call.id, doc);
    if (!r) throw new HttpProblem(404, 'Compte rendu inconnu');
    return reply.type(r.mediaType === 'text/plain' ? 'text/plain; charset=utf-8' : r.mediaType).header('cache-control', 'private, no-store').send(r.data);
  });

  // ---------- import ----------
  app.post('/api/sessions/:id/import', async (req, reply) => {
    const call = await session(req);
    const body = (req.body ?? {}) as { studyUid?: unknown; seriesUid?: unknown; measurements?: unknown };
    if (typeof body.studyUid !== 'string') throw new HttpProblem(400, 'studyUid required', 'send {"studyUid": "…", "seriesUid"?: "…"}');
    if (body.seriesUid !== undefined && typeof body.seriesUid !== 'string') throw new HttpProblem(400, 'seriesUid must be a UID');
    const study = studyOf(req, call, body.studyUid);
    await checkGrant(req, call, study);
    const specs = body.seriesUid ? [specOr404(req, study, body.seriesUid)] : seriesSpecs(study);
    const jobId = await imports.start({ callKey: callKey(call.id), rpps: call.rpps, studyUid: study.studyUid, seriesUid: body.seriesUid as string | undefined, specs, token: token(req), patient: call.patient, measurements: body.measurements });
    return reply.code(202).send({ jobId });
  });
  app.get('/api/sessions/:id/import/:job', async (req) => {
    const call = await session(req);
    const s = await imports.get((req.params as P).job!, callKey(call.id));
    if (!s) throw new HttpProblem(404, 'Import inconnu');
    return s;
  });

  // ---------- QIDO-RS ----------
  const qido = (fn: (req: FastifyRequest) => Promise<DicomJson[]>) => async (req: FastifyRequest, reply: FastifyReply) => {
    if (!acceptsDicomJson(req.headers.accept)) throw new HttpProblem(406, 'Not Acceptable', 'QIDO-RS answers are application/dicom+json');
    return reply.type('application/dicom+json').send(await fn(req));
  };
  const root = '/api/sessions/:id/dicom-web';

  app.get(`${root}/studies`, qido(async (req) => {
    const call = await session(req);
    const q = req.query as Record<string, string>;
    const wanted = q.StudyInstanceUID ?? q['0020000D'];
    return call.studies
      .filter((s) => s.status !== 'unreachable' && (!wanted || wanted.split(/[,\\]/).includes(s.studyUid)))
      .map((s) => studyJson(call, s));
  }));

  app.get(`${root}/studies/:study/series`, qido(async (req) => {
    const { study, rows } = await prepare(req, (req.params as P).study!);
    const fromCache = await cache.store.findSeries(study.studyUid, {}).catch(() => [] as DicomJson[]);
    return study.series.map((se) => {
      const up = rows?.find((r) => str(r, '0020000E') === se.seriesUid) ?? fromCache.find((r) => str(r, '0020000E') === se.seriesUid);
      const base: DicomJson = up ? { ...up } : {
        '0020000D': { vr: 'UI', Value: [study.studyUid] }, '0020000E': { vr: 'UI', Value: [se.seriesUid] },
      };
      base['00201209'] = { vr: 'IS', Value: [se.instances.length] };
      return base;
    });
  }));

  const instancesQido = async (req: FastifyRequest) => {
    const p = req.params as P;
    const { study } = await prepare(req, p.study!);
    const cachedRows = await cache.store.findInstances(study.studyUid, p.series, {}).catch(() => [] as DicomJson[]);
    const cached = new Map(cachedRows.map((r) => [str(r, '00080018'), r]));
    const out: DicomJson[] = [];
    for (const se of study.series) {
      if (p.series && se.seriesUid !== p.series) continue;
      for (const i of se.instances) {
        const c = cached.get(i.sopInstanceUid);
        out.push(c ?? {
          '00080016': { vr: 'UI', Value: [i.sopClassUid] }, '00080018': { vr: 'UI', Value: [i.sopInstanceUid] },
          '0020000D': { vr: 'UI', Value: [study.studyUid] }, '0020000E': { vr: 'UI', Value: [se.seriesUid] },
        });
      }
    }
    return out;
  };
  app.get(`${root}/studies/:study/instances`, qido(instancesQido));
  app.get(`${root}/studies/:study/series/:series/instances`, qido(instancesQido));

  // ---------- WADO-RS retrieve ----------
  async function sendInstances(req: FastifyRequest, reply: FastifyReply, handles: SeriesHandle[]): Promise<FastifyReply> {
    const accepted = acceptedTransferSyntaxes(req.headers.accept);
    async function* parts() {
      for (const h of handles) {
        for await (const f of openedAhead(h)) {
          if (!storedIsAcceptable(f.transferSyntaxUid, accepted)) {
            f.body.destroy();
            throw new NotAcceptableError(`the instance is stored as ${f.transferSyntaxUid}; ask with transfer-syntax=* or that syntax`);
          }
          const headers: Record<string, string> = { 'content-type': `application/dicom; transfer-syntax=${f.transferSyntaxUid}` };
          if (f.size !== undefined) headers['content-length'] = String(f.size); // unknown while it still lands
          yield { headers, body: f.body };
        }
      }
    }
    return streamParts(req, reply, parts(), 'application/dicom');
  }

  /**
   * The source's access check runs alongside the cache fill (the fetch itself is authorised by the
   * source with the same token and KOS): it costs no round trip before the first byte, and still no
   * byte is sent before it passed. When the check had to renew the clinician's token, the series are
   * asked for again with the renewed one.
   */
  /** handles on every series, each leased until the answer ends (all released if one cannot be had) */
  async function ensureAll(reply: FastifyReply, specs: SeriesSpec[], tokenValue: string, rpps: string): Promise<SeriesHandle[]> {
    const got = await Promise.allSettled(specs.map((s) => cache.ensure(s, tokenValue, rpps)));
    const failed = got.find((g) => g.status === 'rejected');
    if (failed) {
      for (const g of got) if (g.status === 'fulfilled') g.value.release();
      throw failed.reason;
    }
    return got.map((g) => leased(reply, (g as PromiseFulfilledResult<SeriesHandle>).value));
  }

  async function grantedHandles(req: FastifyRequest, reply: FastifyReply, call: CallSession, study: SessionStudy, specs: SeriesSpec[]): Promise<SeriesHandle[]> {
    const used = token(req);
    const grant = checkGrant(req, call, study);
    grant.catch(() => undefined); // awaited below; a failure before that must not be unhandled
    let handles = await ensureAll(reply, specs, used, rppsOf(req));
    await grant;
    if (token(req) !== used) {
      // the source refused the token and took the renewed one: what was fetched with the old one failed
      for (const h of handles) h.release();
      await Promise.allSettled(handles.map((h) => h.complete()));
      handles = await ensureAll(reply, specs, token(req), rppsOf(req));
    }
    return handles;
  }

  app.get(`${root}/studies/:study`, async (req, reply) => {
    const call = await session(req);
    const study = studyOf(req, call, (req.params as P).study!);
    try {
      const handles = await grantedHandles(req, reply, call, study, seriesSpecs(study));
      return await sendInstances(req, reply, handles);
    } catch (e) { return peerProblem(e, call, study); }
  });
  app.get(`${root}/studies/:study/series/:series`, async (req, reply) => {
    const p = req.params as P;
    const call = await session(req);
    const study = studyOf(req, call, p.study!);
    const spec = specOr404(req, study, p.series!);
    try {
      const [h] = await grantedHandles(req, reply, call, study, [spec]);
      return await sendInstances(req, reply, [h]);
    } catch (e) { return peerProblem(e, call, study); }
  });
  app.get(`${root}/studies/:study/series/:series/instances/:instance`, async (req, reply) => {
    const p = req.params as P;
    const call = await session(req);
    const study = studyOf(req, call, p.study!);
    const spec = instanceSpec(req, study, p.series!, p.instance!);
    try {
      const [h] = await grantedHandles(req, reply, call, study, [spec]);
      await h.instance(p.instance!);
      return await sendInstances(req, reply, [onlyOne(h, p.instance!)]);
    } catch (e) { return peerProblem(e, call, study); }
  });

  function instanceSpec(req: FastifyRequest, study: SessionStudy, series: string, sop: string): SeriesSpec {
    const spec = specOr404(req, study, series);
    if (!spec.expected.includes(sop) || seriesOfInstance(study, sop)?.seriesUid !== series) throw new HttpProblem(404, 'Instance inconnue', "le KOS ne référence pas cette image");
    req.consumerAudit!.instance = sop;
    return spec;
  }

  // ---------- metadata ----------
  /**
   * Metadata of each series: from the cache once complete; while its fetch still runs, from the source
   * box's own metadata (one small request: the viewer lays out the stack and draws its first slice
   * before the series has landed). What the source describes must be the KOS's instances of the KOS's
   * patient, study and series, checked as each landing instance is; a source that cannot describe it
   * is waited out (the series completes, then the cache answers).
   */
  const metadataOf = async (reply: FastifyReply, specs: SeriesSpec[], tokenValue: string, rpps: string, sop?: string): Promise<DicomJson[]> => {
    const out: DicomJson[] = [];
    for (const spec of specs) {
      const h = leased(reply, await cache.ensure(spec, tokenValue, rpps));
      const expected = new Set(spec.expected);
      if (!sop && h.fetching) {
        const early = await sourceMetadata(spec, tokenValue);
        if (early) { out.push(...early); continue; }
      }
      if (sop) await h.instance(sop); else await h.complete();
      const items = await cache.store.metadata({ study: spec.studyUid, series: spec.seriesUid, ...(sop ? { instance: sop } : {}) });
      out.push(...items.filter((ds) => expected.has(str(ds, '00080018') ?? '')));
    }
    if (!out.length) throw new NotFoundError('nothing to describe');
    return out;
  };
  /** The source's description of a series being fetched (KOS instances only), or undefined when it gave none. */
  async function sourceMetadata(spec: SeriesSpec, tokenValue: string): Promise<DicomJson[] | undefined> {
    const root = dicomWebRootOf(spec.retrieveUrl);
    if (!root) return undefined;
    let items: DicomJson[];
    try {
      items = await peer.getJson<DicomJson[]>(`${root}/studies/${spec.studyUid}/series/${spec.seriesUid}/metadata`, { token: tokenValue, kosUid: spec.kosUid });
    } catch (e) {
      if (e instanceof PeerUnavailableError || (e instanceof PeerStatusError && e.status >= 500) || e instanceof SyntaxError) return undefined;
      throw e;
    }
    if (!Array.isArray(items)) return undefined;
    const kos = { studyUid: spec.studyUid, seriesUid: spec.seriesUid, sops: new Set(spec.expected), patientIds: spec.patientIds };
    const out: DicomJson[] = [];
    for (const ds of items) {
      const sopUid = str(ds, '00080018') ?? '';
      if (!kos.sops.has(sopUid)) continue; // what the KOS does not reference is not described
      const problem = identityProblem({ patientId: str(ds, '00100020') ?? '', studyInstanceUid: str(ds, '0020000D') ?? '', seriesInstanceUid: str(ds, '0020000E') ?? '', sopInstanceUid: sopUid }, kos);
      if (problem) throw new IdentityMismatchError(problem);
      out.push(ds);
    }
    return out.length ? out : undefined;
  }
  const metadata = (level: 'study' | 'series' | 'instance') => async (req: FastifyRequest, reply: FastifyReply) => {
    if (!acceptsDicomJson(req.headers.accept)) throw new HttpProblem(406, 'Not Acceptable', 'metadata is served as application/dicom+json');
    const p = req.params as P;
    const { call, study } = await prepare(req, p.study!);
    let specs: SeriesSpec[];
    if (level === 'study') specs = seriesSpecs(study);
    else if (level === 'series') specs = [specOr404(req, study, p.series!)];
    else specs = [instanceSpec(req, study, p.series!, p.instance!)];
    try {
      const items = await metadataOf(reply, specs, token(req), rppsOf(req), level === 'instance' ? p.instance : undefined);
      return reply.type('application/dicom+json').send(items);
    } catch (e) { return peerProblem(e, call, study); }
  };
  app.get(`${root}/studies/:study/metadata`, metadata('study'));
  app.get(`${root}/studies/:study/series/:series/metadata`, metadata('series'));
  app.get(`${root}/studies/:study/series/:series/instances/:instance/metadata`, metadata('instance'));

  // ---------- frames ----------
  app.get(`${root}/studies/:study/series/:series/instances/:instance/frames/:frames`, async (req, reply) => {
    const accepted = acceptedFrameSyntaxes(req.headers.accept);
    const p = req.params as P;
    const { call, study } = await prepare(req, p.study!);
    const spec = instanceSpec(req, study, p.series!, p.instance!);
    const frames = p.frames!.split(',').map(Number);
    if (frames.length === 0 || frames.length > 10_000 || frames.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new HttpProblem(400, 'Malformed frame list', 'frames must be a comma-separated list of positive integers');
    }
    try {
      // the image the viewer is about to draw (RFC 9218 urgency 0) is fetched alone if the series has not brought it yet
      await leased(reply, await cache.ensure(spec, token(req), rppsOf(req))).instance(p.instance!, { urgent: isUrgent(req.headers.priority) });
    } catch (e) { return peerProblem(e, call, study); }
    let parts;
    try {
      parts = cache.store.retrieveFrames({ study: spec.studyUid, series: spec.seriesUid, instance: p.instance! }, frames, { transferSyntaxes: accepted });
      // one frame asked for single part: no multipart body for the browser to scan for its boundary
      if (frames.length === 1 && prefersSinglePartFrame(req.headers.accept)) return await sendSinglePart(reply, parts, { typeOf: frameType, onBytes: (n) => { if (req.consumerAudit) req.consumerAudit.bytes = n; } });
      return await streamParts(req, reply, mapFrames(parts), undefined);
    } catch (e) {
      if (e instanceof RangeError) throw new HttpProblem(400, 'Frame out of range', e.message);
      throw e;
    }
  });

  // ---------- exports (DICOM zip, PNG capture record) ----------
  exportRoutes(app, { cache, audit, session, studyOf, specOr404, checkGrant, peerProblem });
  // ---------- measurements saved with an imported exam (DICOM SR from the local PACS) ----------
  if (o.localPacs) measurementRoutes(app, { localPacs: o.localPacs, session, studyOf });
}

/** Instances opened (and their first bytes read) this many ahead of the one being sent. */
const OPEN_AHEAD = 4;

/**
 * A series' instances, opened in order but a few ahead: the file opens and first reads of the next
 * ones overlap the sending of the current one, instead of a round trip to the file system between
 * every two instances (a many-slice CT from the cache was bound by those). An opened instance that
 * is not handed over (the answer stopped) is closed.
 */
async function* openedAhead(h: SeriesHandle): AsyncGenerator<OpenedInstance> {
  const sops = h.instances()[Symbol.asyncIterator]();
  const ahead: Promise<OpenedInstance | undefined>[] = [];
  const pull = () => {
    const p = sops.next().then(async (r) => {
      if (r.done) return undefined;
      const f = await h.open(r.value);
      f.body.read(0); // start reading now
      return f;
    });
    p.catch(() => undefined); // surfaced in order, when its turn comes
    ahead.push(p);
  };
  try {
    for (let i = 0; i < OPEN_AHEAD; i++) pull();
    for (;;) {
      const f = await ahead.shift()!;
      if (!f) return;
      pull();
      yield f;
    }
  } finally {
    for (const p of ahead.splice(0)) void p.then((f) => f?.body.destroy(), () => undefined);
    await sops.return?.(undefined);
  }
}

/** a frame's media type, with the transfer syntax it is in */
const frameType = (f: { contentType: string; transferSyntaxUid: string }) => `${f.contentType}; transfer-syntax=${f.transferSyntaxUid}`;

async function* mapFrames(parts: AsyncIterable<{ contentType: string; transferSyntaxUid: string; body: Readable }>) {
  for await (const f of parts) yield { headers: { 'content-type': frameType(f) }, body: f.body };
}

/** A handle restricted to one instance (already landed). */
function onlyOne(h: SeriesHandle, sop: string): SeriesHandle {
  return Object.assign(Object.create(Object.getPrototypeOf(h)) as SeriesHandle, h, { instances: async function* () { yield sop; } });
}

/** RFC 9218 Priority header: urgency 0 (the highest) asked for */
function isUrgent(h: string | string[] | undefined): boolean {
  const v = Array.isArray(h) ? h.join(',') : h ?? '';
  return /(^|,)\s*u\s*=\s*0\s*(;|,|$)/.test(v);
}

function str(ds: DicomJson, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}

function studyJson(call: CallSession, s: SessionStudy): DicomJson {
  const name = `${call.patient.birthName}^${call.patient.givenNames.join(' ')}`;
  return {
    '00080020': { vr: 'DA', ...(s.date ? { Value: [s.date] } : {}) },
    '00080030': { vr: 'TM', ...(s.time ? { Value: [s.time] } : {}) },
    '00080050': { vr: 'SH', ...(s.accessionNumber ? { Value: [s.accessionNumber] } : {}) },
    '00080061': { vr: 'CS', ...(s.modalities.length ? { Value: s.modalities } : {}) },
    '00081030': { vr: 'LO', ...(s.description ? { Value: [s.description] } : {}) },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: name }] },
    '00100020': { vr: 'LO', Value: [call.patient.ins.value] },
    '00100030': { vr: 'DA', Value: [call.patient.birthDate] },
    '00100040': { vr: 'CS', Value: [call.patient.sex] },
    '0020000D': { vr: 'UI', Value: [s.studyUid] },
    '00201206': { vr: 'IS', Value: [s.series.length] },
    '00201208': { vr: 'IS', Value: [s.series.reduce((n, x) => n + x.instances.length, 0)] },
  };
}

function streamParts(req: FastifyRequest, reply: FastifyReply, parts: AsyncIterable<{ headers: Record<string, string>; body: Readable }>, type: string | undefined): Promise<FastifyReply> {
  return sendMultipart(reply, parts, { type, headersOf: (p) => p.headers, onBytes: (n) => { if (req.consumerAudit) req.consumerAudit.bytes = n; } });
}
