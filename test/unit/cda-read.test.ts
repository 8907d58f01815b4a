import t from 'tap';
import { readFileSync } from 'node:fs';
import { CdaError, readCda, reportBody } from '../../gateway/src/cda/read.js';

const CDA = readFileSync(new URL('../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml', import.meta.url));
const text = CDA.toString('utf8');

function cdaError(input: string | Buffer): CdaError {
  try {
    readCda(input);
  } catch (e) {
    if (e instanceof CdaError) return e;
    throw e;
  }
  throw new Error('expected a CdaError');
}

t.test('ANS IMG-CR-IMG sample: document, patient, professionals', async (t) => {
  const r = readCda(CDA);
  t.same(r.documentId, { root: '1.2.250.1.213.1.1.1.45.2' });
  t.same(r.setId, { root: 'D52DE737-001D-4031-B571-0A0ED7C42300' });
  t.equal(r.versionNumber, 2);
  t.same(r.replaces, { root: '90E1C8EC-F951-4B26-A305-A34848818DD6' });
  t.equal(r.code.code, '18748-4');
  t.equal(r.confidentiality.code, 'N');
  t.equal(r.languageCode, 'fr-FR');
  t.equal(r.effectiveTime, '20210108111700+0100');
  t.match(r.title, /Scanner Tête/);
  t.same(r.patient, {
    ins: { value: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
    ipp: { value: '1234567890121', oid: '1.2.3.4.567.8.9.10' },
    birthName: 'PAT-TROIS', givenNames: ['DOMINIQUE'], usedName: 'PAT-TROIS',
    birthDate: '19790328', sex: 'F', birthPlace: '63220',
  });
  t.same(r.author.id, { root: '1.2.250.1.71.4.2.1', extension: '801234560801' });
  t.equal(r.author.family, 'BIDEAULT');
  t.same(r.legalAuthenticator?.organization, { id: { root: '1.2.250.1.71.4.2.2', extension: '101235555' }, name: 'Centre de radiologie Ambroise' });
  t.equal(r.custodian?.name, 'Centre de radiologie Ambroise');
  t.equal(r.healthcareFacilityType?.code, 'SA08');
  t.equal(r.practiceSetting?.code, 'AMBULATOIRE');
  t.same(r.flags, { destDmp: true, masquePs: false, invisiblePatient: false });
});

t.test('ANS sample: one study per serviceEvent with an id; the screening act without id is not a study', async (t) => {
  const r = readCda(CDA);
  t.same(r.studies.map((s) => s.studyInstanceUid), [
    '1.2.250.1.3.152.235.2.12.187636474', '1.2.250.1.3.152.235.2.12.187636475', '1.2.250.1.3.152.235.2.12.187636476',
  ]);
  const s = r.studies[0];
  t.same(s.accessionNumber, { value: '105234751', issuerOid: '1.2.250.1.925.994044785528.27' });
  t.same(s.placerOrderNumber, { value: '984375862', issuerOid: '1.2.250.1.748.12345678.12' });
  t.equal(s.actCode?.code, '24727-0');
  t.equal(s.ccamCode?.code, 'ACQH004');
  t.same(s.modalities.map((m) => m.code), ['CT']);
  t.same(s.anatomicRegions.map((m) => m.code), ['774007']);
  t.equal(r.studies[2].anatomicRegions[0].code, '67734004');
  t.equal(s.startTime, '20210108102500+0100');
});

t.test('report body: the embedded PDF', async (t) => {
  const b = reportBody(CDA);
  if (!('data' in b)) throw t.fail('expected a document');
  t.equal(b.mediaType, 'application/pdf');
  t.equal(b.data.subarray(0, 5).toString('latin1'), '%PDF-');
  const structured = text.replace(/<component>\s*<nonXMLBody>[\s\S]*<\/nonXMLBody>\s*<\/component>/,
    '<component><structuredBody><component><section><title>Conclusion</title><text>Pas d\'anomalie.</text></section></component></structuredBody></component>');
  t.same(reportBody(structured), { text: "Conclusion\nPas d'anomalie." });
});

t.test('clear typed errors', async (t) => {
  t.equal(cdaError('%PDF-1.7 garbage').code, 'not-xml');
  t.equal(cdaError('<a><b></a>').code, 'not-xml');
  const dtd = cdaError(text.replace(/^(\uFEFF?<\?xml[^>]*\?>)?/, (d) => d + '<!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>'));
  t.equal(dtd.code, 'not-xml', 'a valid report behind a DOCTYPE is refused');
  t.match(dtd.message, /DOCTYPE/);
  const notCda = cdaError('<?xml version="1.0"?><Document xmlns="urn:other"/>');
  t.equal(notCda.code, 'not-cda');
  t.match(notCda.message, /not a CDA R2 document/);
  const noStudy = cdaError(text.replace(/<id root="1\.2\.250\.1\.3\.152[^>]*>/g, ''));
  t.equal(noStudy.code, 'missing-field');
  t.equal(noStudy.field, 'documentationOf/serviceEvent/id');
  const noIns = cdaError(text.replace('root="1.2.250.1.213.1.4.10"', 'root="1.2.3.4"'));
  t.equal(noIns.code, 'missing-field');
  t.match(noIns.message, /INS/);
  const badVersion = cdaError(text.replace('<versionNumber value="2"/>', '<versionNumber value="deux"/>'));
  t.equal(badVersion.code, 'bad-value');
});

t.test('the study UID may also come as root=OID + extension=UID', async (t) => {
  const r = readCda(text.replace('<id root="1.2.250.1.3.152.235.2.12.187636474"/>', '<id root="1.2.250.1.213.2.99" extension="1.2.3.4.5"/>'));
  t.equal(r.studies[0].studyInstanceUid, '1.2.3.4.5');
});
