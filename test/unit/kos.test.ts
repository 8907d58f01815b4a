import t from 'tap';
import { readFileSync } from 'node:fs';
import { readCda } from '../../gateway/src/cda/read.js';
import { checkKos } from '../../gateway/src/dicom/kos-check.js';
import { encodePart10, type Dataset } from '../../gateway/src/dicom/kos-encode.js';
import { buildKos, KOS_TITLES, kosInstances, parseKos, readDataset, type KosInstance } from '../../gateway/src/dicom/kos.js';
import { isValidUid, newUid } from '../../gateway/src/dicom/uid.js';

const fx = (p: string) => readFileSync(new URL(`../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/${p}`, import.meta.url));
const record = readCda(fx('CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml'));
record.patient.birthName = 'PAT-TROIS';
record.patient.givenNames = ['Hélène', 'Éloïse'];
const [studyA, studyB] = record.studies;
const CT = '1.2.840.10008.5.1.4.1.1.2';
const SR = '1.2.840.10008.5.1.4.1.1.88.22';
const instances: KosInstance[] = [
  { studyUid: studyA.studyInstanceUid, seriesUid: '1.2.3.1', sopClassUid: CT, sopInstanceUid: '1.2.3.1.1' },
  { studyUid: studyA.studyInstanceUid, seriesUid: '1.2.3.1', sopClassUid: CT, sopInstanceUid: '1.2.3.1.2' },
  { studyUid: studyA.studyInstanceUid, seriesUid: '1.2.3.2', sopClassUid: SR, sopInstanceUid: '1.2.3.2.1' },
  { studyUid: studyB.studyInstanceUid, seriesUid: '1.2.4.1', sopClassUid: CT, sopInstanceUid: '1.2.4.1.1' },
  { studyUid: studyA.studyInstanceUid, seriesUid: '1.2.3.1', sopClassUid: CT, sopInstanceUid: '1.2.3.1.1' }, // duplicate
];
const base = { record, study: studyA, instances, retrieveBaseUrl: 'https://box.example:8443/dicom-web/', retrieveLocationUid: '1.2.250.1.999.1' };

t.test('build → parse round trip (DRIM-M §2)', async (t) => {
  const built = buildKos({ ...base, description: 'Examen complet', now: new Date(2024, 4, 6, 7, 8, 9) });
  t.ok(isValidUid(built.sopInstanceUid) && built.sopInstanceUid.startsWith('2.25.'));
  t.not(built.sopInstanceUid, built.seriesInstanceUid);
  const k = parseKos(built.part10);
  t.equal(k.sopInstanceUid, built.sopInstanceUid);
  t.equal(k.seriesInstanceUid, built.seriesInstanceUid);
  t.equal(k.studyInstanceUid, studyA.studyInstanceUid);
  t.equal(k.modality, 'KO');
  t.same(k.title, { code: '113030', scheme: 'DCM', meaning: 'Manifest' });
  t.equal(k.isRejectionNote, false);
  t.same(k.template, { mappingResource: 'DCMR', templateId: '2010' });
  t.equal(k.description, 'Examen complet');
  t.equal(k.contentDate, '20240506');
  t.same(k.patient, {
    id: '279035121518989', issuer: 'ASIP-SANTE-INS-NIR', issuerOid: '1.2.250.1.213.1.4.10',
    name: 'PAT-TROIS^Hélène^Éloïse', birthDate: '19790328', sex: 'F',
    otherIds: [{ id: '1234567890121', issuerOid: '1.2.3.4.567.8.9.10' }],
  });
  t.equal(k.accessionNumber, '105234751');
  t.equal(k.studies.length, 2);
  const [a, b] = k.studies;
  t.same(a.accession, { value: '105234751', issuerOid: '1.2.250.1.925.994044785528.27' });
  t.same(a.placerOrder, { value: '984375862', issuerOid: '1.2.250.1.748.12345678.12' });
  t.same(a.series.map((s) => [s.seriesUid, s.instances.length]), [['1.2.3.1', 2], ['1.2.3.2', 1]]);
  t.equal(a.series[0].retrieveUrl, `https://box.example:8443/dicom-web/studies/${studyA.studyInstanceUid}/series/1.2.3.1`);
  t.equal(a.series[0].retrieveLocationUid, '1.2.250.1.999.1');
  t.equal(b.studyUid, studyB.studyInstanceUid);
  t.equal(b.accession?.value, '105234751');
  t.same(k.content.map((c) => c.valueType), ['TEXT', 'IMAGE', 'IMAGE', 'COMPOSITE', 'IMAGE'], 'duplicate dropped, SR is COMPOSITE');
  t.equal(kosInstances(k).length, 4);
  t.same(checkKos(built.part10), []);
});

t.test('UIDs under the box root', async (t) => {
  const root = '1.2.250.1.999.42';
  const built = buildKos({ ...base, uidRoot: root });
  t.ok(built.sopInstanceUid.startsWith(root + '.') && built.sopInstanceUid.length <= 64);
  t.ok(isValidUid(newUid('1.2.3')));
  t.throws(() => newUid('1.2.a'));
});

t.test('the ANS demonstrator KOS (implicit VR LE) and the XDM one parse', async (t) => {
  const k = parseKos(fx('KOS/ko.dcm'));
  t.equal(k.patient.id, '162018885045327');
  t.equal(k.patient.issuerOid, '1.2.250.1.213.1.4.10');
  t.equal(k.title.code, '113030');
  t.equal(k.studies[0].series.length, 2);
  t.equal(k.studies[0].series[0].instances.length, 10);
  t.match(k.studies[0].series[0].retrieveUrl, /^http:\/\/localhost:4200\/api\/source\/studies\//);
  t.same(k.studies[0].accession, { value: '7252295367250016', issuerOid: '1.2.840.113619.6.196' });
  t.match(k.description, /Exam A/);
  const x = parseKos(fx('XDM/KA202401/IHE_XDM/SS000001/KOS_1_1.DCM'));
  t.equal(x.studies[0].series[0].instances.length, 10);
  // our checks see what the demonstrator misses (DRIM-M.md: "do not take it as the standard")
  const problems = checkKos(fx('KOS/ko.dcm'));
  t.ok(problems.some((p) => /ContentTemplateSequence/.test(p)));
  t.ok(problems.some((p) => /no RetrieveLocationUID/.test(p)));
  t.ok(problems.some((p) => /not https/.test(p)));
});

t.test('IOCM rejection notes parse with their title', async (t) => {
  for (const title of [KOS_TITLES.rejectedForQuality, KOS_TITLES.rejectedForPatientSafety, KOS_TITLES.incorrectModalityWorklist, KOS_TITLES.dataRetentionExpired]) {
    const k = parseKos(buildKos({ ...base, title }).part10);
    t.equal(k.title.code, title.code);
    t.equal(k.isRejectionNote, true);
  }
  t.throws(() => parseKos(Buffer.from('not dicom at all')), /Not a readable DICOM|Not a Key Object/);
});

function reencode(part10: Buffer, edit: (ds: Dataset) => void): Buffer {
  const ds = readDataset(part10) as Dataset;
  const meta: Dataset = {};
  for (const k of ['FileMetaInformationVersion', 'MediaStorageSOPClassUID', 'MediaStorageSOPInstanceUID', 'TransferSyntaxUID', 'ImplementationClassUID', 'ImplementationVersionName']) {
    if (k in ds) meta[k] = ds[k];
    delete ds[k];
  }
  delete ds.FileMetaInformationGroupLength;
  meta.FileMetaInformationVersion = new Uint8Array([0, 1]);
  edit(ds);
  return encodePart10(meta, ds);
}

t.test('checkKos finds what dciodvfy does not check', async (t) => {
  const good = buildKos(base).part10;
  t.same(checkKos(reencode(good, () => {})), [], 're-encoding unchanged is clean');
  const wrongTitle = reencode(good, (ds) => { (ds.ConceptNameCodeSequence as Dataset[])[0].CodeValue = '999999'; });
  t.match(checkKos(wrongTitle).join('\n'), /not in CID 7010/);
  t.match(checkKos(good, { expectTitle: '113001' }).join('\n'), /expected 113001/);
  const noTemplate = reencode(good, (ds) => { delete ds.ContentTemplateSequence; });
  t.match(checkKos(noTemplate).join('\n'), /DCMR\/2010/);
  const missingItem = reencode(good, (ds) => { (ds.ContentSequence as Dataset[]).pop(); });
  t.match(checkKos(missingItem).join('\n'), /in the evidence but not in the content/);
  const twice = reencode(good, (ds) => { const c = ds.ContentSequence as Dataset[]; c.push(c[0]); });
  t.match(checkKos(twice).join('\n'), /referenced twice/);
  const badUrl = reencode(good, (ds) => {
    const se = ((ds.CurrentRequestedProcedureEvidenceSequence as Dataset[])[0].ReferencedSeriesSequence as Dataset[])[0];
    se.RetrieveURL = 'https://box.example/dicom-web/studies/1.2.3/series/9.9.9';
  });
  t.match(checkKos(badUrl).join('\n'), /not the evidence's/);
  const http = buildKos({ ...base, retrieveBaseUrl: 'http://box.example/dicom-web' }).part10;
  t.match(checkKos(http).join('\n'), /not https/);
  t.same(checkKos(http, { allowHttp: true }), []);
  const wrongKind = reencode(good, (ds) => { (ds.ContentSequence as Dataset[])[0].ValueType = 'COMPOSITE'; });
  t.match(checkKos(wrongKind).join('\n'), /should be an IMAGE item/);
});
