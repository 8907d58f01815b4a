// IOCM is deny by default (dcmtk storescu as the sender, the DMP simulator): a box that lists no
// calling AE title opens no IOCM port, so `storescu -aet ANYBODY` with a rejection note (113039) cannot
// withdraw a published KOS; a box that does list them still refuses a connection from an address not
// in source.iocmAllowedAddresses, whatever AE title it claims.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBox } from '../helpers/box.js';
import { freePort } from '../helpers/ports.js';
import { startDmpBench, sendHl7, settledJob, type DmpBench } from '../helpers/publication-env.js';
import { makeMgStudy, MG_FOR_PRESENTATION } from '../../sandbox/demo-data/mg-study.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createSourceRole } from '../../gateway/src/source/role.js';
import { buildKos, KOS_TITLES } from '../../gateway/src/dicom/kos.js';
import { readCda } from '../../gateway/src/cda/read.js';
import type { Box } from '../../gateway/src/box.js';
import type { ClinicianIdentity } from '../../gateway/src/dmp/client.js';
import { storescu } from '../helpers/dcmtk.js';

const clinician: ClinicianIdentity = { rpps: '810000000001', displayName: 'ALICE GENERALISTE', roles: [{ code: '10', codeSystem: '1.2.250.1.71.1.2.7' }] };
const PATIENT = { ins: '279035121518989', ipp: 'IPP-IOCM-1', birthName: 'PAT-IOCM', givenNames: ['SACHA'], birthDate: '19790328', sex: 'F' as const };
const INS_XDS = `${PATIENT.ins}^^^&1.2.250.1.213.1.4.10&ISO^NH`;
const study = makeMgStudy({ patientId: PATIENT.ipp, accession: 'ACC-IOCM-1', seed: 41 });
const report: ReportInput = {
  patient: PATIENT,
  studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: 'ACC-IOCM-1', modality: 'MG', date: '20240115', description: 'MAMMOGRAPHIE' }],
  setId: '1.2.250.1.999.1.1.91.1',
};
let bench: DmpBench;
const boxes: Box[] = [];

/** A rejection note (113039) naming every instance of the study, as a PACS would send it. */
function rejectionNoteFile(): string {
  const record = readCda(buildReportCda(report));
  const note = buildKos({
    record, study: record.studies[0], title: KOS_TITLES.dataRetentionExpired,
    instances: study.files.map((f) => ({ studyUid: study.studyInstanceUid, seriesUid: study.seriesInstanceUid, sopClassUid: MG_FOR_PRESENTATION, sopInstanceUid: f.sopInstanceUid })),
    retrieveBaseUrl: 'https://pacs.invalid/dicom-web', retrieveLocationUid: '1.2.3.4',
  });
  const file = join(mkdtempSync(join(tmpdir(), 'iocm-note-')), 'rejection.dcm');
  writeFileSync(file, note.part10);
  return file;
}

async function sourceBox(source: Record<string, unknown>): Promise<Box> {
  const box = await startTestBox({
    pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'iocm-pacs-')) },
    extra: { roles: ['source'], dmp: bench.dmpConfig, publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 0 }, source },
    boxOptions: { plugins: [dmpService, createSourceRole({ retryBaseMs: 100, maxRetryDelayMs: 500, pollMs: 100 })] },
  });
  boxes.push(box);
  await box.pacs.store((async function* () { for (const f of study.files) yield f.part10; })());
  return box;
}

t.before(async () => { bench = await startDmpBench(); });
t.teardown(async () => {
  for (const b of boxes) await b.close();
  await bench?.sim.close();
});

t.test('no calling AE title configured: no IOCM port, and storescu -aet ANYBODY cannot withdraw a published KOS', async (t) => {
  const iocmPort = await freePort();
  // a port is given, but no calling AE title: IOCM stays off (an empty list is not "anyone")
  const box = await sourceBox({ iocmPort });
  t.equal(box.addresses.iocm, undefined, 'the box reports no IOCM listener');
  t.equal((await sendHl7(box.addresses.mllp.port, oruMessage(buildReportCda(report), report, { controlId: 'IOCM-PUB-1' }))).code, 'AA');
  const pub = await settledJob(box, 'IOCM-PUB-1');
  t.equal(pub.state, 'done', `published (${pub.last_error ?? ''})`);

  const r = await storescu(iocmPort, 'ANYBODY', box.config.source.iocmAet, rejectionNoteFile());
  t.not(r.status, 0, 'storescu fails');
  t.match(r.out, /Association Request Failed|connection refused|Peer aborted/i, `nobody listens (${r.out.split('\n').filter((l) => /E:|Failed|refused/i.test(l)).join(' | ')})`);
  t.equal((await box.store.db.selectFrom('rejected_instance').select('sop_instance_uid').execute()).length, 0, 'no rejection recorded');
  t.equal((await box.store.db.selectFrom('publication_job').select('id').where('kind', 'in', ['refresh', 'withdraw']).execute()).length, 0, 'no re-publication or withdrawal queued');
  const kos = await box.services.dmp!.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician);
  t.equal(kos.length, 1, 'the KOS is still approved in the DMP');
});

t.test('calling AE titles configured: a connection from an address not in source.iocmAllowedAddresses is closed at once', async (t) => {
  const iocmPort = await freePort();
  // the PACS is at 127.0.0.2; storescu connects from 127.0.0.1 with the PACS's AE title
  const box = await sourceBox({ iocmPort, iocmCallingAets: ['ORTHANC'], iocmAllowedAddresses: ['127.0.0.2'] });
  t.match(box.addresses.iocm, { host: '127.0.0.1', port: iocmPort, aeTitle: 'DRIMBOX_IOCM' }, 'the listener is on the fixed, configured port');
  const r = await storescu(iocmPort, 'ORTHANC', 'DRIMBOX_IOCM', rejectionNoteFile());
  t.not(r.status, 0, 'storescu fails');
  t.notMatch(r.out, /Association Accepted/, 'no association');
  t.match(r.out, /Association Request Failed|Peer aborted|connection closed/i, `closed at once (${r.out.split('\n').filter((l) => /E:|Failed/i.test(l)).join(' | ')})`);
  t.equal((await box.store.db.selectFrom('rejected_instance').select('sop_instance_uid').execute()).length, 0, 'no rejection recorded');
});
