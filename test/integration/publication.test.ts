// Publication through the real path with the folder store as PACS: node-hl7-client → MLLP → box
// (durable outbox) → folder store → DMP simulator (ITI-41/57, read back with ITI-18/43), then the
// KOS-scoped peer API over mutual TLS, the admin view, the report link, corrections and withdrawal.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { startDmpBench, sendHl7, waitFor, publicationJob, settledJob, type DmpBench } from '../helpers/publication-env.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createSourceRole } from '../../gateway/src/source/role.js';
import { checkKos } from '../../gateway/src/dicom/kos-check.js';
import { parseKos } from '../../gateway/src/dicom/kos.js';
import type { Box } from '../../gateway/src/box.js';
import type { ClinicianIdentity } from '../../gateway/src/dmp/client.js';

const clinician: ClinicianIdentity = { rpps: '810000000001', displayName: 'ALICE GENERALISTE', roles: [{ code: '10', codeSystem: '1.2.250.1.71.1.2.7' }] };
const PATIENT = { ins: '279035121518989', ipp: 'IPP-PUB-1', birthName: 'PAT-TROIS', givenNames: ['DOMINIQUE'], birthDate: '19790328', sex: 'F' as const };
const INS_XDS = `${PATIENT.ins}^^^&1.2.250.1.213.1.4.10&ISO^NH`;

let bench: DmpBench;
let box: Box;
let peer: Dispatcher;
/** the admin API's client (no client certificate), one for the whole file */
let adminAgent: Dispatcher;
let mllpPort: number;
let study: ReturnType<typeof makeMgStudy>;
let adminAuth: Record<string, string>;

function report(over: Partial<ReportInput> = {}): ReportInput {
  return {
    patient: PATIENT,
    studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: 'ACC-PUB-1', modality: 'MG', date: '20240115', description: 'MAMMOGRAPHIE BILATERALE' }],
    setId: '1.2.250.1.999.1.1.77.1',
    ...over,
  };
}
const oru = (r: ReportInput, controlId: string, o: { withdraw?: boolean; destDmp?: boolean } = {}) => oruMessage(buildReportCda(r), r, { controlId, ...o });

async function admin(path: string, method: 'GET' | 'POST' = 'GET', headers = adminAuth) {
  const r = await request(`${box.userUrl}${path}`, { method, headers, dispatcher: adminAgent });
  const buf = Buffer.from(await r.body.arrayBuffer());
  const type = String(r.headers['content-type'] ?? '');
  return { status: r.statusCode, type, buf, json: type.includes('json') ? JSON.parse(buf.toString('utf8')) : undefined };
}

async function peerGet(path: string, kosUid?: string) {
  const r = await request(`${box.peerUrl}${path}`, { dispatcher: peer, headers: kosUid ? { 'KOS-SOPInstanceUID': kosUid, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } : {} });
  const buf = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, type: String(r.headers['content-type'] ?? ''), buf };
}

const jobCount = async () => Number((await box.store.db.selectFrom('publication_job').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

t.before(async () => {
  bench = await startDmpBench();
  study = makeMgStudy({ patientId: PATIENT.ipp, accession: 'ACC-PUB-1', seed: 11 });
  box = await startTestBox({
    pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'pub-pacs-')) },
    // source role only: with the consumer role too, report links go to the viewer (not loaded here)
    extra: { roles: ['source'], dmp: bench.dmpConfig, publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 1 } },
    boxOptions: { plugins: [dmpService, createSourceRole({ retryBaseMs: 100, maxRetryDelayMs: 500, pollMs: 200 })] },
  });
  const stored = await box.pacs.store((async function* () { for (const f of study.files) yield f.part10; })());
  t.equal(stored.stored.length, 4, 'the MG study is in the PACS');
  mllpPort = box.addresses.mllp.port;
  adminAuth = { authorization: `Bearer ${box.config.admin.token}` };
  peer = await mtlsAgent((await testPki()).demoClient);
  adminAgent = await mtlsAgent();
});
t.teardown(async () => {
  await adminAgent?.close();
  await peer?.close();
  await box?.close();
  await bench?.sim.close();
});

let kosV1: string;

t.test('ORU^R01 → AA → KOS in the DMP that dciodvfy accepts, with the report', async (t) => {
  const ack = await sendHl7(mllpPort, oru(report(), 'PUB-1'));
  t.equal(ack.code, 'AA', 'acknowledged once stored');
  const j = await settledJob(box, 'PUB-1');
  t.equal(j.state, 'done', `job done (${j.last_error ?? ''})`);

  const dmp = box.services.dmp!;
  const found = await dmp.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician);
  t.equal(found.length, 1, 'one KOS in the DMP');
  const reports = await dmp.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: '18748-4', scheme: '2.16.840.1.113883.6.1' }] }, clinician);
  t.equal(reports.length, 1, 'the report was published with it (dmp.includeReport default)');
  const [doc] = await dmp.retrieveDocuments([{ repositoryUniqueId: found[0].repositoryUniqueId!, documentUniqueId: found[0].uniqueId }], { as: clinician, patientId: INS_XDS });
  kosV1 = found[0].uniqueId;

  const file = join(mkdtempSync(join(tmpdir(), 'kos-')), 'kos.dcm');
  writeFileSync(file, doc.content);
  const v = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
  if (v.error) throw new Error('dciodvfy (dicom3tools) is not installed');
  const errors = (v.stderr + v.stdout).split('\n').filter((l) => /^Error/.test(l));
  t.same(errors, [], 'dciodvfy: zero errors on the KOS as the DMP returns it');
  t.same(checkKos(doc.content, { expectTitle: '113030' }), [], 'our TID 2010 / DRIM-M checks pass');
  const kos = parseKos(doc.content);
  t.equal(kos.sopInstanceUid, kosV1, 'DMP uniqueId = KOS SOP Instance UID');
  t.equal(kos.patient.id, PATIENT.ins, 'PatientID = INS');
  const refs = kos.studies.flatMap((s) => s.series.flatMap((se) => se.instances.map((i) => i.sopInstanceUid)));
  t.same(refs.sort(), study.files.map((f) => f.sopInstanceUid).sort(), 'every PACS instance referenced once');
  t.match(kos.studies[0].series[0].retrieveUrl, `${box.config.peer.publicUrl}/dicom-web/studies/${study.studyInstanceUid}/series/`, 'RetrieveURL points at this box');
});

t.test('a resent message is acknowledged and publishes nothing twice', async (t) => {
  const before = await jobCount();
  const ack = await sendHl7(mllpPort, oru(report(), 'PUB-1-AGAIN'));
  t.equal(ack.code, 'AA');
  t.equal(await jobCount(), before, 'no new job (idempotent on setId + version)');
  await new Promise((r) => setTimeout(r, 300));
  const found = await box.services.dmp!.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician);
  t.equal(found.length, 1, 'still one KOS in the DMP');
});

t.test('same setId and version with different content → AE naming the conflict; the DMP keeps the report', async (t) => {
  const before = await jobCount();
  const ack = await sendHl7(mllpPort, oru(report({ text: 'Compte rendu corrigé sans nouvelle version.' }), 'PUB-1-CHANGED'));
  t.equal(ack.code, 'AE', 'refused, not acknowledged and dropped');
  t.match(ack.error ?? '', /^ERR\|\|OBX\|205\^Duplicate key identifier/, 'HL7 error 205');
  t.match(ack.text ?? '', /Version 1 of report 1\.2\.250\.1\.999\.1\.1\.77\.1 was already received with different content/);
  t.equal(await jobCount(), before, 'no job');
  const reports = await box.services.dmp!.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: '18748-4', scheme: '2.16.840.1.113883.6.1' }] }, clinician);
  t.equal(reports.length, 1, 'one report in the DMP');
  const [doc] = await box.services.dmp!.retrieveDocuments([{ repositoryUniqueId: reports[0].repositoryUniqueId!, documentUniqueId: reports[0].uniqueId }], { as: clinician, patientId: INS_XDS });
  t.equal(doc.content.toString('utf8'), buildReportCda(report()), 'the DMP holds the first text, unchanged');
  t.equal((await sendHl7(mllpPort, oru(report(), 'PUB-1-SAME'))).code, 'AA', 'the identical report again is still AA');
});

t.test('KOS-scoped peer access over mutual TLS', async (t) => {
  const s = study.studyInstanceUid;
  const ok = await peerGet(`/dicom-web/studies/${s}`, kosV1);
  t.equal(ok.status, 200, 'study retrieve granted by the current KOS');
  t.equal(ok.buf.toString('latin1').split('DICM').length - 1, 4, 'four instances streamed');
  const series = study.seriesInstanceUid;
  t.equal((await peerGet(`/dicom-web/studies/${s}/series/${series}/instances/${study.files[0].sopInstanceUid}`, kosV1)).status, 200, 'instance retrieve');

  const missing = await peerGet(`/dicom-web/studies/${s}`);
  t.equal(missing.status, 400, 'no KOS-SOPInstanceUID → 400');
  t.match(missing.type, 'application/problem+json');
  t.equal((await peerGet(`/dicom-web/studies/${s}`, '1.2.3.4.5.6.7')).status, 404, 'unknown KOS → 404');
  t.equal((await peerGet(`/dicom-web/studies/1.2.3.999`, kosV1)).status, 404, 'a study the KOS does not reference → 404');
  t.equal((await peerGet(`/dicom-web/studies/${s}/series/${series}/instances/1.2.3.999`, kosV1)).status, 404, 'an instance the KOS does not reference → 404');
  t.equal((await peerGet(`/dicom-web/studies/${s}`, 'not-a-uid')).status, 400, 'malformed header → 400');
});

t.test('admin view needs the admin token; lists, details, serves the KOS', async (t) => {
  t.equal((await admin('/admin/publications', 'GET', {})).status, 401, 'no credential → 401');
  const bad = await admin('/admin/publications', 'GET', { authorization: 'Bearer nope' });
  t.equal(bad.status, 403, 'wrong token → 403');
  t.match(bad.type, 'application/problem+json');
  const list = await admin('/admin/publications?state=published&page=1&pageSize=10');
  t.equal(list.status, 200);
  t.ok(list.json.items.length >= 1 && list.json.items.every((i: any) => i.state === 'published' && i.step === 'done'), 'filtered by state');
  t.equal((await admin('/admin/publications?state=bogus')).status, 400, 'unknown state → 400');
  const id = (await publicationJob(box, 'PUB-1'))!.id;
  const one = await admin(`/admin/publications/${id}`);
  t.equal(one.json.kos.sopInstanceUid, kosV1);
  t.equal(one.json.kos.status, 'current');
  const kos = await admin(`/admin/publications/${id}/kos`);
  t.equal(kos.status, 200);
  t.match(kos.type, 'application/dicom');
  t.equal(parseKos(kos.buf).sopInstanceUid, kosV1, 'the current KOS as Part 10');
  t.equal((await admin('/admin/publications/999999')).status, 404);
  t.equal((await admin(`/admin/publications/${id}/retry`, 'POST')).status, 409, 'only failed jobs can be retried');
});

t.test('report link shows the published state; bad parameters → 400', async (t) => {
  const url = `/IHEInvokeImageDisplay?requestType=STUDY&studyUID=${study.studyInstanceUid}&accessionNumber=ACC-PUB-1`;
  const r = await admin(url, 'GET', {});
  t.equal(r.status, 200);
  t.match(r.buf.toString(), 'data-state="published"');
  t.equal((await admin(`/IHEInvokeImageDisplay?requestType=SERIES&studyUID=${study.studyInstanceUid}`, 'GET', {})).status, 400);
  t.equal((await admin('/IHEInvokeImageDisplay?requestType=STUDY&studyUID=abc', 'GET', {})).status, 400);
  t.equal((await admin('/IHEInvokeImageDisplay?requestType=STUDY&studyUID=1.2.3.4', 'GET', {})).status, 404, 'unknown study');
});

t.test('malformed HL7 → NACK with a reason, and no job', async (t) => {
  const before = await jobCount();
  const good = oru(report({ setId: '1.2.250.1.999.1.1.77.9' }), 'BAD-0');
  const cases: [string, string, RegExp][] = [
    ['no MSH', good.split('\r').slice(1).join('\r'), /MSH/i],
    ['bad Base64', good.replace(/\^Base64\^[A-Za-z0-9+/=]+/, '^Base64^@@@not*base64@@@'), /Base64/],
    ['CDA not XML', good.replace(/\^Base64\^[A-Za-z0-9+/=]+/, `^Base64^${Buffer.from('<ClinicalDocument><oops').toString('base64')}`), /XML/i],
    ['missing study UID', oruMessage(buildReportCda(report()).replace(/(<serviceEvent classCode="ACT">\s*)<id root="[0-9.]+"\/>/, '$1'), report(), { controlId: 'BAD-4' }), /study/i],
  ];
  for (const [name, msg, reason] of cases) {
    const ack = await sendHl7(mllpPort, msg).catch(async () => ({ code: 'NO-ACK', error: '' }));
    if (ack.code === 'NO-ACK') {
      // node-hl7-client refuses to send a message without MSH: send it raw
      const raw = await rawExchange(Buffer.concat([Buffer.from([0x0b]), Buffer.from(msg), Buffer.from([0x1c, 0x0d])]));
      t.match(raw, /MSA\|A[ER]/, `${name}: NACK`);
      continue;
    }
    t.match(ack.code, /^A[ER]$/, `${name}: NACK (${ack.code})`);
    t.match(ack.error ?? '', reason, `${name}: ERR says why`);
  }
  const unframed = await rawExchange(Buffer.concat([Buffer.from(good), Buffer.from([0x1c, 0x0d])]));
  t.match(unframed, /MSA\|AR/, 'bad framing (no start byte) → AR');
  t.match(unframed, /start byte/, 'and says so');
  t.equal(await jobCount(), before, 'no job was stored for any of them');
});

function rawExchange(payload: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(mllpPort, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no answer')); }, 10_000);
    sock.on('data', (d) => { buf += d.toString('utf8'); if (buf.includes('\x1c\r')) { clearTimeout(timer); sock.end(); resolve(buf); } });
    sock.on('error', reject);
    sock.write(payload);
  });
}

t.test('PACS PatientID / AccessionNumber disagreeing with the report → failed job with a reason, retry action', async (t) => {
  const wrong = report({ setId: '1.2.250.1.999.1.1.77.2', patient: { ...PATIENT, ipp: 'SOMEONE-ELSE' } });
  t.equal((await sendHl7(mllpPort, oru(wrong, 'MISMATCH-1'))).code, 'AA');
  const j = await settledJob(box, 'MISMATCH-1');
  t.equal(j.state, 'failed');
  t.match(j.last_error, /PatientID does not match/);
  const accWrong = report({ setId: '1.2.250.1.999.1.1.77.3', studies: [{ ...report().studies[0], accessionNumber: 'OTHER-ACC' }] });
  t.equal((await sendHl7(mllpPort, oru(accWrong, 'MISMATCH-2'))).code, 'AA');
  const j2 = await settledJob(box, 'MISMATCH-2');
  t.match(j2.last_error, /AccessionNumber/);
  const shown = await admin(`/admin/publications?state=failed`);
  t.ok(shown.json.items.some((i: any) => i.id === j.id && /PatientID/.test(i.reason)), 'visible in the admin view, with the reason');
  const retry = await admin(`/admin/publications/${j.id}/retry`, 'POST');
  t.equal(retry.status, 202, 'retry accepted');
  const again = await waitFor(async () => { const x = await publicationJob(box, 'MISMATCH-1'); return x && x.state === 'failed' && x.attempts >= 1 && x.updated_at > j.updated_at ? x : undefined; }, 10_000, 'retried job');
  t.match(again.last_error, /PatientID/, 'fails again for the same reason');
});

t.test('a study not yet in the PACS is waited for', async (t) => {
  const late = makeMgStudy({ patientId: PATIENT.ipp, accession: 'ACC-LATE', seed: 12, date: '20240201' });
  const r = report({ setId: '1.2.250.1.999.1.1.77.4', studies: [{ studyInstanceUid: late.studyInstanceUid, accessionNumber: 'ACC-LATE', modality: 'MG', date: '20240201', description: 'MAMMO' }] });
  t.equal((await sendHl7(mllpPort, oru(r, 'LATE-1'))).code, 'AA');
  await waitFor(async () => (await publicationJob(box, 'LATE-1'))?.last_error, 10_000, 'a first attempt');
  t.match((await publicationJob(box, 'LATE-1'))!.last_error, /not in the PACS/);
  const waiting = (await admin(`/admin/publications/${(await publicationJob(box, 'LATE-1'))!.id}`)).json;
  t.match(waiting, { state: 'waiting-for-study', lastError: /not in the PACS/, waitingForStudySince: String }, 'the admin view says it waits for the study');
  await box.pacs.store((async function* () { for (const f of late.files) yield f.part10; })());
  const j = await settledJob(box, 'LATE-1');
  t.equal(j.state, 'done', 'published once the images arrived');
});

t.test('DESTDMP=N: acknowledged, nothing published', async (t) => {
  const r = report({ setId: '1.2.250.1.999.1.1.77.5' });
  t.equal((await sendHl7(mllpPort, oru(r, 'NODMP-1', { destDmp: false }))).code, 'AA');
  const j = (await publicationJob(box, 'NODMP-1'))!;
  t.equal(j.state, 'done');
  t.match(j.note, /DESTDMP=N/);
});

t.test('correction (v2, RPLC) replaces the KOS; withdrawal deletes it', async (t) => {
  const v1Id = `${report().setId}.1`;
  const v2 = report({ version: 2, replaces: v1Id, text: 'Compte rendu corrigé.' });
  t.equal((await sendHl7(mllpPort, oru(v2, 'PUB-2'))).code, 'AA');
  const j = await settledJob(box, 'PUB-2');
  t.equal(j.state, 'done', `v2 published (${j.last_error ?? ''})`);
  const dmp = box.services.dmp!;
  const kosEntries = await dmp.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }], status: ['Approved', 'Deprecated'] }, clinician);
  const approved = kosEntries.filter((e) => e.status === 'Approved');
  const v2Kos = approved.find((e) => e.uniqueId !== kosV1 && e.referenceIds.some((r) => r.startsWith(study.studyInstanceUid)));
  t.ok(v2Kos, 'a new KOS is approved');
  t.equal(kosEntries.find((e) => e.uniqueId === kosV1)?.status, 'Deprecated', 'the old KOS was replaced (RPLC)');
  t.equal((await peerGet(`/dicom-web/studies/${study.studyInstanceUid}`, kosV1)).status, 403, 'the replaced KOS no longer grants access');
  t.equal((await peerGet(`/dicom-web/studies/${study.studyInstanceUid}`, v2Kos!.uniqueId)).status, 200, 'the new one does');

  const older = report({ version: 1 });
  t.equal((await sendHl7(mllpPort, oru({ ...older, setId: older.setId }, 'PUB-1-LATE'))).code, 'AA', 'v1 again (same key) → AA, no-op');

  t.equal((await sendHl7(mllpPort, oru(v2, 'WD-1', { withdraw: true }))).code, 'AA');
  const w = await settledJob(box, 'WD-1');
  t.equal(w.state, 'done', `withdrawn (${w.last_error ?? ''})`);
  const after = await dmp.getDocuments({ uniqueIds: [v2Kos!.uniqueId] }, clinician, INS_XDS);
  t.match(after[0].status, /Deleted/, 'ITI-57: the KOS is Deleted in the DMP');
  t.equal((await peerGet(`/dicom-web/studies/${study.studyInstanceUid}`, v2Kos!.uniqueId)).status, 410, 'a withdrawn KOS answers Gone');
  t.equal((await admin(`/admin/publications/${j.id}/kos`)).status, 404, 'no current KOS any more');
  const page = await admin(`/IHEInvokeImageDisplay?requestType=STUDY&studyUID=${study.studyInstanceUid}`, 'GET', {});
  t.match(page.buf.toString(), 'data-state="withdrawn"');
});

t.test('dciodvfy is installed (real peer)', async (t) => {
  t.ok(execFileSync('which', ['dciodvfy']).toString().trim());
});
