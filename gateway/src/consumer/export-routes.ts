// Exports from the viewer, each audited (who exported what): a series as a DICOM zip, streamed from
// the study cache one instance at a time (archiver, stored entries: the box's memory does not grow
// with the series), and the record of a PNG capture the viewer made in the browser (its hash, size
// and the image it shows). Registered by viewer-api.ts inside its plugin: PSC session required.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { once } from 'node:events';
import { ZipArchive } from 'archiver';
import type { DicomJson } from '../pacs/pacs.js';
import { HttpProblem } from '../http/problem.js';
import type { AuditLog } from '../store/audit.js';
import type { CallSession } from './call-sessions.js';
import type { SessionStudy } from './dmp-search.js';
import type { SeriesSpec, StudyCache } from './study-cache.js';

/** What the export routes borrow from the viewer API (session and access checks). */
export interface ExportDeps {
  cache: StudyCache;
  audit: AuditLog;
  session(req: FastifyRequest): Promise<CallSession>;
  studyOf(req: FastifyRequest, call: CallSession, studyUid: string): SessionStudy;
  specOr404(req: FastifyRequest, study: SessionStudy, seriesUid: string): SeriesSpec;
  checkGrant(req: FastifyRequest, call: CallSession, study: SessionStudy): Promise<DicomJson[] | undefined>;
  peerProblem(e: unknown, call: CallSession, study: SessionStudy): Promise<never>;
}

type P = { id: string; study: string; series: string };
const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;
const isUid = (v: unknown): v is string => typeof v === 'string' && v.length <= 64 && UID.test(v);

export function exportRoutes(app: FastifyInstance, d: ExportDeps): void {
  const token = (req: FastifyRequest) => req.clinicianSession!.accessToken;
  const rppsOf = (req: FastifyRequest) => req.clinicianSession!.clinician.rpps;

  app.get('/api/sessions/:id/export/studies/:study/series/:series/dicom.zip', async (req, reply) => {
    const p = req.params as P;
    const call = await d.session(req);
    const study = d.studyOf(req, call, p.study);
    const spec = d.specOr404(req, study, p.series);
    let handle;
    try {
      await d.checkGrant(req, call, study);
      handle = await d.cache.ensure(spec, token(req), rppsOf(req));
      await handle.instance(spec.expected[0]); // the first bytes are real before the 200 goes out
    } catch (e) { return d.peerProblem(e, call, study); }
    const h = handle;
    const zip = new ZipArchive({ store: true });
    let count = 0;
    let failure: string | undefined;
    // one instance open at a time: the next is appended once the zip has taken the previous one
    void (async () => {
      for await (const sop of h.instances()) {
        const f = await h.open(sop);
        const entry = once(zip, 'entry');
        zip.append(f.body, { name: `${spec.seriesUid}/${sop}.dcm` });
        await entry;
        count++;
      }
      await zip.finalize();
    })().catch((e: Error) => { failure = e.message; zip.destroy(e); });
    reply.raw.once('close', () => {
      d.audit.record({
        direction: 'user', actorRpps: rppsOf(req), route: 'export-dicom-zip', method: 'GET', patientId: call.patient.ins.value,
        studyUid: study.studyUid, seriesUid: spec.seriesUid, kosUid: study.kosUid,
        status: reply.raw.writableFinished && !failure ? 200 : 499, bytes: zip.pointer(),
        outcome: `${count}/${spec.expected.length} instances${failure ? `: ${failure}` : ''}`.slice(0, 300),
      });
    });
    return reply.type('application/zip').header('cache-control', 'private, no-store')
      .header('content-disposition', `attachment; filename="serie-${spec.seriesUid}.zip"`).send(zip);
  });

  // the viewer made a PNG of a viewport (identity overlay burned in): who exported which image
  app.post('/api/sessions/:id/export/capture', async (req, reply) => {
    const call = await d.session(req);
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (!isUid(b.studyUid) || !isUid(b.seriesUid) || (b.sopInstanceUid !== undefined && !isUid(b.sopInstanceUid))) {
      throw new HttpProblem(400, 'Export mal formé', 'attendu : {"studyUid", "seriesUid", "sopInstanceUid"?, "sha256", "bytes"}');
    }
    if (typeof b.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(b.sha256) || !Number.isInteger(b.bytes) || (b.bytes as number) <= 0) {
      throw new HttpProblem(400, 'Export mal formé', 'sha256 (hexadécimal) et bytes (la taille du PNG) sont obligatoires');
    }
    const study = d.studyOf(req, call, b.studyUid);
    const spec = d.specOr404(req, study, b.seriesUid);
    if (b.sopInstanceUid && !spec.expected.includes(b.sopInstanceUid as string)) throw new HttpProblem(404, 'Instance inconnue', "le KOS ne référence pas cette image");
    d.audit.record({
      direction: 'user', actorRpps: rppsOf(req), route: 'export-png', method: 'POST', patientId: call.patient.ins.value,
      studyUid: study.studyUid, seriesUid: spec.seriesUid, instanceUid: b.sopInstanceUid as string | undefined, kosUid: study.kosUid,
      status: 200, bytes: b.bytes as number, outcome: `PNG sha256:${b.sha256}`,
    });
    return reply.code(204).send();
  });
}
