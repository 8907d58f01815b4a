// Three gateway instances on one PostgreSQL database and one cache folder, behind HAProxy: losing a
// machine (SIGKILL) loses nothing a user was promised. The RIS's acknowledged reports all reach the
// DMP exactly once; a peer stream cut by the crash ends as an aborted multipart and its retry is served
// by another instance; a clinician's next request after the crash works without a new login; three
// instances asked at once for the same uncached series read it from the PACS once.
import t, { type Test } from 'tap';
import { Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import pg from 'pg';
import { startCluster, type Cluster } from '../helpers/ha-cluster.js';
import { sendHl7 } from '../helpers/publication-env.js';
import { multipartParts } from '../helpers/multipart.js';
import { mtlsAgent } from '../helpers/box.js';
import { CookieJar, browse, pscLogin } from '../helpers/browser.js';
import { waitFor } from '../helpers/wait.js';
import { makeMgStudy, type MgStudy } from '../../sandbox/demo-data/mg-study.js';
import { nirWithKey } from '../../sandbox/demo-data/catalogue.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { readInfo } from '../../gateway/src/dicom/part10.js';
import { parseContentType } from '../../gateway/src/dicom/multipart.js';

const REPORTS = 6;
const DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

interface Exam { ins: string; study: MgStudy; report: ReportInput; message: string }

// one patient per report; the first exam is full size (~68 MB) so a peer stream of it lasts long
// enough to be cut; the others are small
const exams: Exam[] = Array.from({ length: REPORTS }, (_, k) => {
  const ins = nirWithKey(`2790375115${100 + k}`);
  const study = makeMgStudy({ patientId: `IPP-HA-${k}`, patientName: 'DUPONT^MARIE ANNE', birthDate: '19790312', sex: 'F', accession: `ACC-HA-${k}`, seed: 300 + k, size: k === 0 ? 'full' : 'small' });
  const report: ReportInput = {
    patient: { ins, ipp: `IPP-HA-${k}`, birthName: 'DUPONT', givenNames: ['MARIE', 'ANNE'], birthDate: '19790312', sex: 'F' },
    studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: `ACC-HA-${k}`, modality: 'MG', date: '20240115', description: 'MAMMOGRAPHIE' }],
    setId: `1.2.250.1.999.1.1.77.${k}`,
  };
  return { ins, study, report, message: oruMessage(buildReportCda(report), report, { controlId: `HA-${k}` }) };
});

let c: Cluster;
t.before(async () => {
  c = await startCluster({ instances: 3 });
  for (const e of exams) await c.orthanc.upload(e.study.files.map((f) => f.part10));
});
t.teardown(() => c?.close());

/** KOS and report documents the DMP holds for the patient. */
function dmpDocuments(ins: string): { kos: Buffer[]; reports: number } {
  const rows = c.dmp.sim.db.prepare('SELECT mime_type, content FROM documents WHERE patient_id LIKE ?').all(`${ins}^%`) as { mime_type: string; content: Buffer }[];
  return { kos: rows.filter((r) => r.mime_type === 'application/dicom').map((r) => r.content), reports: rows.filter((r) => r.mime_type !== 'application/dicom').length };
}

const kosUidOf = (e: Exam) => readInfo(dmpDocuments(e.ins).kos[0]).sopInstanceUid;
/** SIGKILLs instance i; at the end of the test it is started again and HAProxy sees all three up. */
async function crash(t: Test, i: number): Promise<void> {
  t.teardown(async () => { await c.start(i); await c.waitUp(c.instances.map((x) => x.index)); });
  await c.kill(i);
}

/** Sends the report as a RIS does: until it is acknowledged (a connection cut by a crash is retried). */
async function publish(e: Exam): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      const ack = await sendHl7(c.hl7Port, e.message);
      if (ack.code === 'AA') return;
      last = new Error(`${ack.code} ${ack.text ?? ''} ${ack.error ?? ''}`);
    } catch (err) { last = err; }
  }
  throw new Error(`report ${e.report.setId} never acknowledged: ${last}`);
}

/** The contextual-call form for an exam's patient (DRIM-M.md §5 names). */
const callForm = (e: Exam): Record<string, string> => ({
  'Patient.identifier.value': e.ins, 'Patient.identifier.system': '1.2.250.1.213.1.4.10',
  'Patient.name.family': 'DUPONT', 'Patient.name.given': 'MARIE ANNE', 'Patient.gender': 'female', 'Patient.birthDate': '1979-03-12',
  'Address.district': '75115',  InformationEtOppositionConsultation: 'true', PatientID: `IPP-HA-${exams.indexOf(e)}`, PatientIDIssuer: '1.2.3.4.567.8.9.10',
});

/** A browser tab: one keep-alive connection to the centre's user address, logged in at PSC, viewer session opened for `e`. */
async function clinicianWithSession(e: Exam): Promise<{ jar: CookieJar; tab: Agent; session: string }> {
  const tab = new Agent({ connect: { ca: readFileSync(c.pki.ca.cert), servername: 'localhost' }, connections: 1 });
  const jar = new CookieJar();
  await pscLogin(jar, tab, c.userUrl, c.psc.issuer, c.psc.clinicians[0].rpps);
  const call = await browse(jar, tab, `${c.userUrl}/contextual-call`, { method: 'POST', form: callForm(e), origin: c.userUrl }, (u) => u.includes('/viewer/'));
  const session = new URL(call.url).searchParams.get('session');
  if (!session) throw new Error(`contextual call did not open a viewer session: ${call.status} ${call.url} ${call.body.slice(0, 300)}`);
  return { jar, tab, session };
}

t.test('kill -9 one instance during publications: every acknowledged report is in the DMP exactly once', async (t) => {
  const first = exams.slice(0, 3);
  await Promise.all(first.map(publish));
  // each instance got one report (roundrobin); their jobs are in flight (the 1 s stability wait)
  await crash(t, 2);
  t.pass('gw3 killed with SIGKILL while publishing');
  await Promise.all(exams.slice(3).map(publish));

  // the killed instance's claim expires and another instance finishes its job
  const db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  t.teardown(() => db.end());
  await waitFor(async () => {
    const { rows } = await db.query("SELECT count(*)::int AS n FROM publication_job WHERE state NOT IN ('done', 'failed')");
    return rows[0].n === 0 && exams.every((e) => dmpDocuments(e.ins).kos.length > 0);
  }, 120_000, () => `every report in the DMP (${exams.map((e) => dmpDocuments(e.ins).kos.length).join(',')})`, 250);
  const { rows: failed } = await db.query("SELECT set_id, last_error FROM publication_job WHERE state = 'failed'");
  t.same(failed, [], 'no job failed');
  for (const e of exams) {
    const d = dmpDocuments(e.ins);
    t.same({ kos: d.kos.length, reports: d.reports }, { kos: 1, reports: 1 }, `report ${e.report.setId}: one KOS and one report`);
  }
});

t.test('kill -9 the instance serving a peer stream: an aborted multipart, and the retry is served by another instance', async (t) => {
  const e = exams[0];
  const token = await c.psc.issueAccessToken({ rpps: c.psc.clinicians[0].rpps, clientId: 'box-a' });
  const url = `${c.peerUrl}/dicom-web/studies/${e.study.studyInstanceUid}/series/${readInfo(e.study.files[0].part10).seriesInstanceUid}`;
  const headers = { authorization: `Bearer ${token}`, 'kos-sopinstanceuid': kosUidOf(e), accept: DICOM_ACCEPT };
  const peerB = await mtlsAgent(c.pki.boxes['box-b']);
  t.teardown(() => peerB.close());

  const r = await request(url, { dispatcher: peerB, headers });
  if (r.statusCode !== 200) return t.fail(`the stream does not start: ${r.statusCode} ${await r.body.text()}`);
  const chunks: Buffer[] = [];
  // read the first bytes, then stop: the serving instance stalls on back-pressure mid-series
  await new Promise<void>((resolve) => r.body.once('data', (d: Buffer) => { chunks.push(d); r.body.pause(); resolve(); }));
  const [holder] = await c.haproxy.serversOf('peer');
  const victim = c.instances.findIndex((x) => x.name === holder);
  t.ok(victim >= 0, `HAProxy names the instance serving the stream (${holder})`);
  await crash(t, victim);
  let error: unknown;
  try { for await (const d of r.body) chunks.push(d as Buffer); } catch (err) { error = err; }
  const got = Buffer.concat(chunks);
  const boundary = parseContentType(String(r.headers['content-type'])).params.boundary!;
  const total = e.study.files.reduce((n, f) => n + f.part10.length, 0);
  t.ok(got.length < total, `only part of the series arrived (${got.length} of ${total} bytes${error ? `; ${(error as Error).message}` : ''})`);
  t.notOk(got.includes(Buffer.from(`--${boundary}--`)), 'no closing boundary');
  await t.rejects(multipartParts(Readable.from([got]), r.headers['content-type']), 'the body does not read as a complete multipart');

  const retry = await request(url, { dispatcher: peerB, headers });
  t.equal(retry.statusCode, 200, 'the retry is answered');
  const parts = await multipartParts(retry.body, retry.headers['content-type']);
  t.same(parts.map((p) => readInfo(p.data).sopInstanceUid).sort(), e.study.files.map((f) => f.sopInstanceUid).sort(), 'the whole series, every instance');
  t.same(parts.map((p) => p.data.length).sort(), e.study.files.map((f) => f.part10.length).sort(), 'every instance complete');
});

t.test('kill -9 the instance holding a clinician\'s connection: the next request works without logging in again', async (t) => {
  const e = exams[1];
  const { jar, tab, session } = await clinicianWithSession(e);
  t.teardown(() => tab.close());
  const get = (path: string) => request(`${c.userUrl}${path}`, { dispatcher: tab, headers: { cookie: jar.header(c.userUrl), accept: 'application/json' } });
  const before = await get(`/api/sessions/${session}`);
  t.equal(before.statusCode, 200, 'the viewer session document');
  const doc = await before.body.json() as { studies: { studyUid: string }[] };
  t.same(doc.studies.map((s) => s.studyUid), [e.study.studyInstanceUid]);

  const [holder] = await c.haproxy.serversOf('user');
  const victim = c.instances.findIndex((x) => x.name === holder);
  t.ok(victim >= 0, `HAProxy names the instance holding the tab's connection (${holder})`);
  await crash(t, victim);
  await waitFor(async () => (await c.haproxy.serversOf('user')).length === 0, 10_000, 'the dead connection to close');

  const after = await get(`/api/sessions/${session}`);
  t.equal(after.statusCode, 200, 'the same session, answered by another instance (no login asked)');
  t.same((await after.body.json() as typeof doc).studies.map((s) => s.studyUid), [e.study.studyInstanceUid]);
  t.not((await c.haproxy.serversOf('user'))[0], holder, 'served by a live instance');
  const series = await get(`/api/sessions/${session}/dicom-web/studies/${e.study.studyInstanceUid}/series`);
  t.equal(series.statusCode, 200, 'the viewer lists the series');
  t.equal(((await series.body.json()) as unknown[]).length, 1);
});

t.test('three instances asked at once for the same uncached series: one upstream fetch', async (t) => {
  const e = exams[2];
  const { jar, tab, session } = await clinicianWithSession(e);
  t.teardown(() => tab.close());
  const seriesUid = readInfo(e.study.files[0].part10).seriesInstanceUid;
  const isInstanceRead = (line: string) => new RegExp(`^GET /dicom-web/studies/${e.study.studyInstanceUid}/series/${seriesUid}/instances/[0-9.]+$`).test(line);
  t.equal(c.pacsRelay.requests.filter(isInstanceRead).length, 0, 'the series was never read from the PACS');

  // each instance directly (not through HAProxy): all three are asked, at the same moment
  const answers = await Promise.all(c.instances.map(async (inst) => {
    const r = await request(`${inst.userUrl}/api/sessions/${session}/dicom-web/studies/${e.study.studyInstanceUid}/series/${seriesUid}`, {
      dispatcher: c.userAgent, headers: { cookie: jar.header(c.userUrl), accept: DICOM_ACCEPT },
    });
    if (r.statusCode !== 200) return { status: r.statusCode, count: -1, detail: await r.body.text() };
    return { status: r.statusCode, count: (await multipartParts(r.body, r.headers['content-type'])).length };
  }));
  t.same(answers.map((a) => [a.status, a.count]), c.instances.map(() => [200, e.study.files.length]), 'each instance serves the whole series');
  const reads = c.pacsRelay.requests.filter(isInstanceRead);
  t.equal(reads.length, e.study.files.length, `each instance of the series read once from the PACS (${reads.length} reads for ${e.study.files.length} instances)`);
});
