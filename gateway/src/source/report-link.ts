// The link a RIS puts into its reports (IHE IID style, DRIM-M §5):
//   <user publicUrl>/IHEInvokeImageDisplay?requestType=STUDY&studyUID=<uid>&accessionNumber=<acc>
// On a source-only box it answers a small page with the study's publication state (no patient data
// on it); on a box that is also a consumer, the consumer role resolves the link into a viewer session,
// finding the patient through `publishedPatientOf`.
import type { FastifyInstance } from 'fastify';
import { HttpProblem } from '../http/problem.js';
import { isValidUid } from '../dicom/uid.js';
import type { PublicationRepository } from './publication/repository.js';
import { parseKos } from '../dicom/kos.js';
import { escapeHtml } from '../http/html.js';


/** The link template, for a RIS to fill in. */
export function reportLink(userPublicUrl: string, studyUid: string, accessionNumber?: string): string {
  const u = new URL('/IHEInvokeImageDisplay', userPublicUrl);
  u.searchParams.set('requestType', 'STUDY');
  u.searchParams.set('studyUID', studyUid);
  if (accessionNumber) u.searchParams.set('accessionNumber', accessionNumber);
  return u.toString();
}

export function reportLinkRoute(app: FastifyInstance, repo: PublicationRepository): void {
  app.get('/IHEInvokeImageDisplay', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const one = (k: string) => (Array.isArray(q[k]) ? undefined : (q[k] as string | undefined));
    const requestType = one('requestType');
    const studyUid = one('studyUID');
    const acc = one('accessionNumber');
    if (requestType !== 'STUDY') throw new HttpProblem(400, 'Bad requestType', 'requestType must be STUDY');
    if (!studyUid || !isValidUid(studyUid)) throw new HttpProblem(400, 'Bad studyUID', 'studyUID must be one DICOM UID');
    if (acc !== undefined && (acc === '' || acc.length > 16 || /[\\\r\n]/.test(acc))) {
      throw new HttpProblem(400, 'Bad accessionNumber', 'accessionNumber, when given, is 1 to 16 characters');
    }
    const kos = (await repo.kosForStudy(studyUid)).filter((k) => !acc || k.studies.some((s) => s.studyUid === studyUid && (!s.accession || s.accession === acc)));
    const current = kos.find((k) => k.status === 'current');
    const jobs = await repo.jobsForStudy(studyUid);
    const pending = jobs.find((j) => j.state !== 'done' && j.state !== 'failed');
    const withdrawn = kos.some((k) => k.status === 'withdrawn');
    const failed = jobs.some((j) => j.state === 'failed');
    let state: string;
    let key: string;
    let status = 200;
    if (current) { key = 'published'; state = `Published: the study is referenced in the DMP (${current.instanceCount} images).`; }
    else if (pending) { key = 'pending'; state = 'Publication in progress: the images will be available shortly.'; }
    else if (withdrawn) { key = 'withdrawn'; state = 'Withdrawn: the report or the images were withdrawn.'; }
    else if (failed) { key = 'failed'; state = 'Publication failed: the imaging centre has to correct it.'; }
    else { key = 'unknown'; state = 'Unknown: this study has not been published by this DRIMbox.'; status = 404; }
    const html = `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>DRIMbox — study</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:40rem;margin:2rem auto">
<h1>Imaging study</h1>
<p>Study Instance UID: <code>${escapeHtml(studyUid)}</code>${acc ? `<br>Accession number: <code>${escapeHtml(acc)}</code>` : ''}</p>
<p id="state" data-state="${key}">${escapeHtml(state)}</p>
</body></html>`;
    return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  });
}

/** The INS of the patient of a study this box published (current KOS), for report links without patientID. */
export function publishedPatientOf(repo: PublicationRepository): (studyUid: string) => Promise<{ value: string; oid: string } | undefined> {
  return async (studyUid) => {
    const kos = (await repo.kosForStudy(studyUid)).find((k) => k.status === 'current');
    const part10 = kos ? await repo.kosPart10(kos.id) : undefined;
    if (!part10) return undefined;
    const p = parseKos(part10).patient;
    return p.issuerOid ? { value: p.id, oid: p.issuerOid } : undefined;
  };
}
