// How a clinician arrives on the consumer box: the contextual call (form POST from the RIS/DPI), the
// report link (IHE IID), and the demo launcher page. Each ends in a new private viewer session and a
// 303 to /viewer/?session=<id>. A call made before PSC login is parked and resumed after it.
// The call is cross-site by design (the DPI posts it), so any page could post one: only a call from
// the box's own origin or a listed DPI/RIS origin opens at once; any other (or no Origin) is parked
// behind an interstitial naming the patient, which the clinician confirms with a one-time token bound
// to the session. Nothing is searched or audited under the clinician's name before that.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DmpClient } from '../dmp/client.js';
import { HttpProblem } from '../http/problem.js';
import type { AuditLog } from '../store/audit.js';
import { requireClinician } from '../trust/psc-login.js';
import { SESSION_COOKIE, hashId, readCookie, type ClinicianSession } from '../trust/sessions.js';
import { CallFieldError, INS_OIDS, parseContextualCall, type ContextualCall } from './contextual-call.js';
import { DmpSearchError, searchPatientStudies } from './dmp-search.js';
import type { CallSessionStore } from './call-sessions.js';
import { launcherPage, type LauncherEntry } from './launcher.js';
import { escapeHtml } from '../http/html.js';

export interface EntryRoutesOptions {
  calls: CallSessionStore;
  dmp?: DmpClient;
  audit: AuditLog;
  isHostAllowed: (host: string) => boolean;
  /** downloads the allow-list again (rate-limited) when a KOS names an unlisted host */
  refreshAllowList?: () => Promise<void>;
  launcher?: () => LauncherEntry[];
  /** for report links without a patientID: the INS of a study this box published (source role) */
  patientOfStudy?: (studyUid: string) => { value: string; oid: string } | undefined | Promise<{ value: string; oid: string } | undefined>;
  /** the box's own origin (config user.publicUrl): its launcher and the confirmation post from there */
  boxOrigin: string;
  /** DPI/RIS origins whose contextual calls open at once (config user.allowedCallOrigins) */
  allowedCallOrigins: string[];
}

/** parked-form key holding the Origin of a call that needs confirmation (not a call field: a real call naming it is refused) */
const NEEDS_CONFIRMATION = '#origin';
const CONFIRM_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";


function wantsHtml(req: FastifyRequest): boolean {
  return String(req.headers.accept ?? '').includes('text/html');
}

/** A refusal the clinician reads: an HTML page for browsers, problem+json otherwise. */
function refuse(req: FastifyRequest, reply: FastifyReply, status: number, title: string, detail: string): FastifyReply {
  req.problem = `${title}: ${detail}`;
  if (wantsHtml(req)) {
    return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store')
      .send(`<!doctype html><html lang="fr"><meta charset="utf-8"><title>${escapeHtml(title)}</title><body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p></body></html>`);
  }
  return reply.code(status).type('application/problem+json').send({ type: 'about:blank', title, status, detail });
}

export async function entryRoutes(app: FastifyInstance, o: EntryRoutesOptions): Promise<void> {
  const { calls, audit } = o;
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
      const form: Record<string, string | string[]> = {};
      for (const [k, v] of new URLSearchParams(body as string)) {
        const prev = form[k];
        form[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      done(null, form);
    });
  }

  /** Runs the DMP search for a call and opens its viewer session. */
  async function open(req: FastifyRequest, reply: FastifyReply, call: ContextualCall, session: ClinicianSession, route: string): Promise<FastifyReply> {
    const t0 = performance.now();
    const rec = (status: number, outcome?: string) => audit.record({
      direction: 'user', actorRpps: session.clinician.rpps, route, method: req.method, patientId: call.patient.ins.value,
      studyUid: call.filters.studyInstanceUid, status, outcome, durationMs: performance.now() - t0,
    });
    if (!o.dmp) {
      rec(503, 'no DMP configured');
      return refuse(req, reply, 503, 'DMP non configuré', "Cette DRIMbox n'est pas reliée au DMP : la recherche des examens est impossible.");
    }
    const c = session.clinician;
    let found;
    try {
      found = await searchPatientStudies(o.dmp, call, { rpps: c.rpps, displayName: c.name, roles: [] }, { isHostAllowed: o.isHostAllowed, refreshAllowList: o.refreshAllowList });
    } catch (e) {
      if (e instanceof DmpSearchError) {
        rec(e.status, e.message);
        return refuse(req, reply, e.status, 'Recherche DMP impossible', e.userMessage);
      }
      throw e;
    }
    const patient = { ...call.patient };
    if (!patient.birthName && found.patientFromKos?.name) {
      const [family = '', given = ''] = found.patientFromKos.name.split('^');
      patient.birthName = family;
      patient.givenNames = given.split(/\s+/).filter(Boolean);
      if (found.patientFromKos.birthDate) patient.birthDate = found.patientFromKos.birthDate;
      const sx = found.patientFromKos.sex;
      patient.sex = sx === 'M' || sx === 'F' ? sx : 'U';
    }
    const created = await calls.create({ rpps: c.rpps, patient, clinician: { name: c.name, rpps: c.rpps }, studies: found.studies }, found.reports);
    rec(303, `${found.studies.length} study(ies) found`);
    return reply.header('cache-control', 'no-store').redirect(`/viewer/?session=${encodeURIComponent(created.id)}`, 303);
  }

  function parse(req: FastifyRequest, reply: FastifyReply, form: unknown): ContextualCall | FastifyReply {
    try {
      return parseContextualCall((form ?? {}) as Record<string, unknown>);
    } catch (e) {
      if (e instanceof CallFieldError) {
        audit.record({ direction: 'user', route: '/contextual-call', method: req.method, status: e.status, outcome: e.message.slice(0, 300) });
        return refuse(req, reply, e.status, e.status === 403 ? 'Consultation non autorisée' : `Paramètre invalide : ${e.field}`, e.message);
      }
      throw e;
    }
  }

  const trusted = new Set([o.boxOrigin, ...o.allowedCallOrigins].map((x) => new URL(x).origin));

  app.post('/contextual-call', async (req, reply) => {
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      return refuse(req, reply, 415, 'Formulaire attendu', 'the contextual call is an application/x-www-form-urlencoded POST');
    }
    const call = parse(req, reply, req.body);
    if (!('patient' in call)) return call;
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : '';
    const form = req.body as Record<string, string>;
    if (!trusted.has(origin)) {
      const parked = await calls.park({ ...form, [NEEDS_CONFIRMATION]: origin });
      return reply.header('cache-control', 'no-store').redirect(`/contextual-call/confirm/${encodeURIComponent(parked.id)}`, 303);
    }
    const session = await req.server.pscSessions?.get(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (session) return open(req, reply, call, session, '/contextual-call');
    // Not logged in (or the RIS posted cross-site, which carries no SameSite=Lax cookie): park the
    // call, then a top-level GET resumes it — with the session cookie, or through PSC login.
    const parked = await calls.park(form);
    return reply.header('cache-control', 'no-store').redirect(`/contextual-call/resume/${encodeURIComponent(parked.id)}`, 303);
  });

  app.get('/contextual-call/resume/:pid', { preHandler: requireClinician }, async (req, reply) => {
    const pid = (req.params as { pid: string }).pid;
    const form = await calls.unpark(pid);
    if (!form || form === 'refused') return refuse(req, reply, 404, 'Appel contextuel expiré', "Cet appel n'est plus valable : relancez-le depuis votre logiciel.");
    if (NEEDS_CONFIRMATION in form) {
      const again = await calls.park(form);
      return reply.header('cache-control', 'no-store').redirect(`/contextual-call/confirm/${encodeURIComponent(again.id)}`, 303);
    }
    const call = parse(req, reply, form);
    if (!('patient' in call)) return call;
    return open(req, reply, call, req.clinicianSession!, '/contextual-call');
  });

  // The interstitial: names the patient and where the call came from; the parked call moves to a
  // new id that only this page (its token, held in the database for this clinician session) can confirm.
  app.get('/contextual-call/confirm/:pid', { preHandler: requireClinician }, async (req, reply) => {
    const form = await calls.unpark((req.params as { pid: string }).pid);
    if (!form || form === 'refused') return refuse(req, reply, 404, 'Appel contextuel expiré', "Cet appel n'est plus valable : relancez-le depuis votre logiciel.");
    const { [NEEDS_CONFIRMATION]: origin = '', ...fields } = form;
    const call = parse(req, reply, fields);
    if (!('patient' in call)) return call;
    const parked = await calls.park({ ...fields, [NEEDS_CONFIRMATION]: origin }, { confirmFor: hashId(req.clinicianSession!.id) });
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('content-security-policy', CONFIRM_CSP)
      .send(confirmPage(call, origin, parked.id, parked.token!));
  });

  app.post('/contextual-call/confirm', { preHandler: requireClinician }, async (req, reply) => {
    const origin = req.headers.origin;
    if (origin !== undefined && new URL(o.boxOrigin).origin !== origin) {
      return refuse(req, reply, 403, 'Confirmation refusée', 'the confirmation must come from this DRIMbox\'s own page');
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const pid = typeof body.pid === 'string' ? body.pid : '';
    const token = typeof body.token === 'string' ? body.token : '';
    // the token is compared as its hash in the database: no timing on the token itself
    const form = pid && token ? await calls.unpark(pid, { sessionHash: hashId(req.clinicianSession!.id), token }) : 'refused';
    if (form === 'refused') return refuse(req, reply, 403, 'Confirmation refusée', "ce lien de confirmation n'est pas valable pour votre session");
    if (!form) return refuse(req, reply, 404, 'Appel contextuel expiré', "Cet appel n'est plus valable : relancez-le depuis votre logiciel.");
    const { [NEEDS_CONFIRMATION]: _origin, ...fields } = form;
    const call = parse(req, reply, fields);
    if (!('patient' in call)) return call;
    return open(req, reply, call, req.clinicianSession!, '/contextual-call');
  });

  // IHE IID: the report link. patientID is `INS^^^&OID&ISO` (IID's form); without it, the INS of a
  // study this box published itself. (The source role registers its status page only on boxes
  // without the consumer role.)
  app.get('/IHEInvokeImageDisplay', { preHandler: requireClinician }, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const studyUid = q.studyUID ?? q.studyUid;
    if ((q.requestType ?? 'STUDY') !== 'STUDY') return refuse(req, reply, 400, 'requestType non pris en charge', 'only requestType=STUDY is supported');
    if (!studyUid || !/^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/.test(studyUid) || studyUid.length > 64) return refuse(req, reply, 400, 'Paramètre invalide : studyUID', 'studyUID must be a DICOM UID');
    let ins: { value: string; oid: string } | undefined;
    if (q.patientID) {
      const m = /^(\d{15})\^\^\^&([0-9.]+)&ISO/.exec(q.patientID);
      if (!m || !INS_OIDS.has(m[2])) return refuse(req, reply, 400, 'Paramètre invalide : patientID', 'patientID must be INS^^^&<INS OID>&ISO');
      ins = { value: m[1], oid: m[2] };
    } else {
      ins = await o.patientOfStudy?.(studyUid);
    }
    if (!ins) return refuse(req, reply, 400, 'Paramètre manquant : patientID', 'the link does not name the patient (patientID=INS^^^&OID&ISO)');
    const call: ContextualCall = {
      patient: { birthName: '', givenNames: [], birthDate: '', sex: 'U', ins },
      filters: { studyInstanceUid: studyUid, ...(q.accessionNumber ? { accessionNumber: q.accessionNumber } : {}) },
    };
    return open(req, reply, call, req.clinicianSession!, '/IHEInvokeImageDisplay');
  });

  if (o.launcher && !app.hasRoute({ method: 'GET', url: '/' })) {
    const entries = o.launcher;
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'self'; style-src 'unsafe-inline'; base-uri 'none'")
      .send(launcherPage(entries())));
  }
}

/** The interstitial for a call from an unlisted origin: who the patient is, who asked, confirm or leave. */
function confirmPage(call: ContextualCall, origin: string, pid: string, token: string): string {
  const p = call.patient;
  const born = p.birthDate ? `${p.birthDate.slice(6, 8)}/${p.birthDate.slice(4, 6)}/${p.birthDate.slice(0, 4)}` : '';
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Confirmer l'ouverture du dossier</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>Confirmer l'ouverture du dossier d'imagerie</h1>
<p>Une page ${origin ? `de <strong>${escapeHtml(origin)}</strong>` : "d'origine inconnue"}, qui n'est pas un logiciel déclaré pour cette DRIMbox, demande d'ouvrir le dossier de :</p>
<p style="font-size:1.2em"><strong class="patient">${escapeHtml([p.birthName, ...p.givenNames].join(' '))}</strong>${born ? `, né(e) le ${escapeHtml(born)}` : ''} — INS ${escapeHtml(p.ins.value)}</p>
<p>La recherche dans le DMP sera faite et tracée à votre nom. N'ouvrez ce dossier que si vous l'avez demandé vous-même.</p>
<form method="post" action="/contextual-call/confirm">
<input type="hidden" name="pid" value="${escapeHtml(pid)}"><input type="hidden" name="token" value="${escapeHtml(token)}">
<button type="submit" id="confirm">Ouvrir le dossier</button>
</form>
</body></html>`;
}

export { HttpProblem };
