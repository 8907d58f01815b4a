// Three gateway instances on one PostgreSQL database and one cache folder, behind HAProxy: losing a
// machine (SIGKILL) loses nothing a user was promised. The RIS's acknowledged reports all reach the
// DMP exactly once; a peer stream cut by the crash ends as an aborted multipart and its retry is served
// by another instance; a clinician's next request after the crash works without a new login; three
// instances asked at once for the same uncached series read it from the PACS once.
import t, { type Test } from 'tap';
import { Readable } from 'node:stream';
import { request } from 'undici';
import pg from 'pg';
import { startCluster, type Cluster } from '../helpers/ha-cluster.js';
import { makeExam, seriesOf, dmpDocuments, kosUidOf, sendUntilAcked, clinicianWithSession } from '../helpers/ha-exams.js';
import { multipartParts } from '../helpers/multipart.js';
import { mtlsAgent } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { readInfo } from '../../gateway/src/dicom/part10.js';
import { parseContentType } from '../../gateway/src/dicom/multipart.js';

const DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';
// one patient per report; the first exam is large (4 × 6.5 MB, more than loopback socket buffers hold)
// so that a peer stream of it is still running when it is cut; the others are small
const exams = Array.from({ length: 6 }, (_, k) => makeExam(k, k === 0 ? [2048, 1600] : 'small'));
// three instances started and restarted three times, on a machine shared with other work
t.setTimeout(600_000);

let c: Cluster;
t.before(async () => {
  c = await startCluster({ instances: 3 });
  for (const e of exams) await c.orthanc.upload(e.study.files.map((f) => f.part10));
});
t.teardown(() => c?.close());

/** SIGKILLs instance i; at the end of the test it is started again and HAProxy sees all three up. */
async function crash(t: Test, i: number): Promise<void> {
  t.teardown(async () => { await c.start(i); await c.waitUp(c.instances.map((x) => x.index)); });
  await c.kill(i);
}

t.test('kill -9 one instance during publications: every acknowledged report is in the DMP exactly once', async (t) => {
  const db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  t.teardown(() => db.end());
  const unfinished = async () => (await db.query("SELECT count(*)::int AS n FROM publication_job WHERE state NOT IN ('done', 'failed')")).rows[0].n as number;

  await Promise.all(exams.slice(0, 3).map((e) => sendUntilAcked(c, e)));
  // each instance got one report (roundrobin); gw3 is killed while it holds the claim on a job (the
  // worker names itself <box>@<host>#<pid>-…; a job stays claimed at least the 1 s stability wait)
  const pid = c.instances[2].proc!.pid!;
  const claimed = await waitFor(async () => (await db.query(
    `SELECT id FROM publication_job WHERE claimed_by LIKE '%#${pid}-%' AND state NOT IN ('done', 'failed')`)).rows[0]?.id as number | undefined, 20_000, 'gw3 to claim a job', 25);
  await crash(t, 2);
  t.pass(`gw3 killed with SIGKILL while it held job ${claimed} (${await unfinished()} publication(s) in flight)`);
  await Promise.all(exams.slice(3).map((e) => sendUntilAcked(c, e)));

  // the killed instance's lease expires and another instance finishes its job
  await waitFor(async () => (await unfinished()) === 0 && exams.every((e) => dmpDocuments(c, e.ins).kos.length > 0), 120_000, () => `every report in the DMP (${exams.map((e) => dmpDocuments(c, e.ins).kos.length).join(',')})`, 250);
  const { rows: failed } = await db.query("SELECT set_id, last_error FROM publication_job WHERE state = 'failed'");
  t.same(failed, [], 'no job failed');
  for (const e of exams) {
    const d = dmpDocuments(c, e.ins);
    t.same({ kos: d.kos.length, reports: d.reports }, { kos: 1, reports: 1 }, `report ${e.report.setId}: one KOS and one report`);
  }
});

t.test('kill -9 the instance serving a peer stream: an aborted multipart, and the retry is served by another instance', async (t) => {
  const e = exams[0];
  const token = await c.psc.issueAccessToken({ rpps: c.psc.clinicians[0].rpps, clientId: 'box-a' });
  const url = `${c.peerUrl}/dicom-web/studies/${e.study.studyInstanceUid}/series/${seriesOf(e)}`;
  const headers = { authorization: `Bearer ${token}`, 'kos-sopinstanceuid': kosUidOf(c, e), accept: DICOM_ACCEPT };
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
  const { jar, tab, session } = await clinicianWithSession(c, e);
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
  const { jar, tab, session } = await clinicianWithSession(c, e);
  t.teardown(() => tab.close());
  const seriesUid = seriesOf(e);
  // what the source reads from its PACS to serve the series: the series at once, or instance by instance
  const seriesPath = `/dicom-web/studies/${e.study.studyInstanceUid}/series/${seriesUid}`;
  const reads = () => c.pacsRelay.requests.filter((l) => l === `GET ${seriesPath}` || new RegExp(`^GET ${seriesPath}/instances/[0-9.]+$`).test(l));
  t.same(reads(), [], 'the series was never read from the PACS');

  // each instance directly (not through HAProxy): all three are asked, at the same moment
  const answers = await Promise.all(c.instances.map(async (inst) => {
    const r = await request(`${inst.userUrl}/api/sessions/${session}/dicom-web/studies/${e.study.studyInstanceUid}/series/${seriesUid}`, {
      dispatcher: c.userAgent, headers: { cookie: jar.header(c.userUrl), accept: DICOM_ACCEPT },
    });
    if (r.statusCode !== 200) return { status: r.statusCode, count: -1, detail: await r.body.text() };
    return { status: r.statusCode, count: (await multipartParts(r.body, r.headers['content-type'])).length };
  }));
  t.same(answers.map((a) => [a.status, a.count]), c.instances.map(() => [200, e.study.files.length]), 'each instance serves the whole series');
  const got = reads();
  const sops = e.study.files.map((f) => `GET ${seriesPath}/instances/${f.sopInstanceUid}`).sort();
  const oneFetch = got.join() === `GET ${seriesPath}` || [...got].sort().join() === sops.join();
  t.ok(oneFetch, `one fetch from the PACS: the series once, or each of its instances once (got ${got.length} reads: ${got.map((l) => l.slice(l.indexOf('/series/'))).join(', ')})`);
});

/** How many times instance i answered GET /healthz with `status` (its own metrics). */
async function healthzAnswers(i: number, status: number): Promise<number> {
  const r = await request(`${c.instances[i].userUrl}/metrics`, { dispatcher: c.userAgent });
  const m = (await r.body.text()).match(new RegExp(`^drimbox_http_requests_total\\{listener="user",route="/healthz",status="${status}"\\} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : 0;
}

// last: it stops the PACS, then the database, for good
t.test('the PACS stopped: every instance stays in rotation and serves what does not need it; the database unreachable: out', async (t) => {
  const e = exams[3];
  const { jar, tab, session } = await clinicianWithSession(c, e);
  t.teardown(() => tab.close());
  const seriesUrl = `${c.userUrl}/api/sessions/${session}/dicom-web/studies/${e.study.studyInstanceUid}/series/${seriesOf(e)}`;
  const viewSeries = async () => {
    const r = await request(seriesUrl, { dispatcher: tab, headers: { cookie: jar.header(c.userUrl), accept: DICOM_ACCEPT } });
    return r.statusCode === 200 ? (await multipartParts(r.body, r.headers['content-type'])).length : (await r.body.dump(), -r.statusCode);
  };
  t.equal(await viewSeries(), e.study.files.length, 'the viewer shows the series (now in the shared study cache)');

  await c.orthanc.stop();
  const dependencies = async (i: number) => {
    const r = await request(`${c.instances[i].userUrl}/healthz/dependencies`, { dispatcher: c.userAgent });
    return { status: r.statusCode, body: await r.body.json() as { status: string; checks: { name: string; state: string }[] } };
  };
  for (const inst of c.instances) {
    const d = await dependencies(inst.index);
    t.match(d, { status: 503, body: { status: 'unhealthy' } }, `${inst.name}: /healthz/dependencies says the box cannot do its whole job`);
    t.equal(d.body.checks.find((x) => x.name === 'pacs')?.state, 'down', `${inst.name}: the PACS is down`);
  }
  // HAProxy marks a server down after 3 failed checks (fall 3): let it check every instance 3 times more
  const before = await Promise.all(c.instances.map((x) => healthzAnswers(x.index, 200)));
  await waitFor(async () => (await Promise.all(c.instances.map((x) => healthzAnswers(x.index, 200)))).every((n, i) => n >= before[i] + 9),
    30_000, 'HAProxy to check each instance 3 times on each frontend', 200);
  for (const f of ['peer', 'user', 'hl7']) t.same((await c.haproxy.upServers(f)).sort(), ['gw1', 'gw2', 'gw3'], `HAProxy keeps every instance up on ${f}`);
  t.equal(await viewSeries(), e.study.files.length, 'the viewer still shows the cached series through HAProxy');

  await c.postgres!.stop();
  for (const inst of c.instances) {
    const r = await request(`${inst.userUrl}/healthz`, { dispatcher: c.userAgent });
    const body = await r.body.json() as { status: string; checks: { name: string; state: string }[] };
    t.match({ status: r.statusCode, body }, { status: 503, body: { status: 'unhealthy' } }, `${inst.name}: its database unreachable, the instance is not healthy`);
    t.equal(body.checks.find((x) => x.name === 'database')?.state, 'down');
  }
  await waitFor(async () => (await c.haproxy.upServers('user')).length === 0, 30_000, 'HAProxy to take every instance out', 200);
  t.pass('HAProxy takes them out');
});
