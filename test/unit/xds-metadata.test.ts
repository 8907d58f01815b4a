// The ITI-41 metadata we build, checked against the structure of the ANS example submission.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { buildSubmission, XdsBuildError } from '../../gateway/src/dmp/xds-metadata.js';
import { newUid } from '../../gateway/src/dicom/uid.js';
import { parseXml, descendants, elements, attr, type Element } from '../../gateway/src/dmp/dom.js';
import { ASSOCIATION, IDENT, SCHEME } from '../../gateway/src/dmp/xds-constants.js';
import { classificationsOf, codeOf, externalIdOf, slotValues } from '../../gateway/src/dmp/xds-query.js';
import { verifySubmissionSignature, sha256Base64 } from '../../gateway/src/dmp/submission-signature.js';
import { syntheticPublicationRecord, fakeKosPart10 } from '../helpers/publication-record.js';
import { dmpTestPki } from '../helpers/dmp-pki.js';

const ANS = new URL('../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/XDS/publication.xml', import.meta.url);

function ansRegistryObjects(): Element {
  const raw = readFileSync(ANS, 'utf8');
  const env = raw.slice(raw.indexOf('<soap:Envelope'), raw.indexOf('</soap:Envelope>') + '</soap:Envelope>'.length);
  return descendants(parseXml(env), 'RegistryObjectList')[0];
}

function shape(e: Element) {
  return {
    slots: new Set(elements(e, 'Slot').map((s) => attr(s, 'name')!)),
    schemes: new Set(elements(e, 'Classification').map((c) => attr(c, 'classificationScheme') ?? attr(c, 'classificationNode')!)),
    idents: new Set(elements(e, 'ExternalIdentifier').map((x) => attr(x, 'identificationScheme')!)),
  };
}

const byId = (rol: Element, id: string) => [...elements(rol, 'ExtrinsicObject'), ...elements(rol, 'RegistryPackage')].find((e) => attr(e, 'id') === id)!;
const codes = (e: Element, scheme: string) => classificationsOf(e, scheme).map(codeOf);

t.test('ITI-41 metadata has the ANS example structure and DRIM-M §3 values', async (t) => {
  const pki = await dmpTestPki();
  const record = syntheticPublicationRecord();
  const kos = fakeKosPart10();
  const built = buildSubmission({
    record,
    kos: { sopInstanceUid: '1.2.250.1.999.1.1.8121.9.1', part10: kos },
    submitter: { sourceId: '1.2.250.1.999.1.1.8121', submissionSetUid: '1.2.250.1.999.1.1.8121.5.1', signatureUid: '2.25.1234' },
    signer: { certPem: pki.signer.cert, keyPem: pki.signer.key },
    now: new Date('2024-01-05T10:00:00Z'),
  });
  const ours = descendants(parseXml(built.submitObjectsRequest), 'RegistryObjectList')[0];
  const ans = ansRegistryObjects();

  for (const [ansId, ourId] of [
    ['SubmissionSet01', 'SubmissionSet01'],
    ['DocumentKOS', 'DocumentKOS'],
    ['Signature01', 'Signature01'],
  ]) {
    const a = shape(byId(ans, ansId));
    const o = shape(byId(ours, ourId));
    for (const s of a.slots) t.ok(o.slots.has(s), `${ourId} has slot ${s}`);
    for (const s of a.schemes) t.ok(o.schemes.has(s), `${ourId} has classification ${s}`);
    t.same([...o.idents].sort(), [...a.idents].sort(), `${ourId} has the same external identifiers`);
  }
  // associations: same types, same endpoints
  const assoc = (rol: Element) => elements(rol, 'Association').map((a) => `${attr(a, 'associationType')} ${attr(a, 'sourceObject')}→${attr(a, 'targetObject')}`).sort();
  t.same(assoc(ours).filter((a) => !a.includes('DocumentCR')), assoc(ans), 'HasMember ×2 and signs, as in the example');
  t.ok(assoc(ours).includes(`${ASSOCIATION.hasMember} SubmissionSet01→DocumentCR`), 'the report is a member too');

  // KOS entry values
  const k = byId(ours, 'DocumentKOS');
  const ak = byId(ans, 'DocumentKOS');
  t.equal(attr(k, 'mimeType'), 'application/dicom');
  for (const s of [SCHEME.classCode, SCHEME.typeCode, SCHEME.formatCode]) t.same(codes(k, s), codes(ak, s), `KOS ${s} equals the ANS example`);
  t.same(codes(k, SCHEME.confidentiality), [{ code: 'N', scheme: '2.16.840.1.113883.5.25' }]);
  t.same(codes(k, SCHEME.healthcareFacilityType), [{ code: 'SA07', scheme: '1.2.250.1.71.4.2.4' }]);
  t.same(codes(k, SCHEME.practiceSetting), [{ code: 'AMBULATOIRE', scheme: '1.2.250.1.213.1.1.4.9' }]);
  t.same(codes(k, SCHEME.eventCode), [
    { code: 'ZCQJ001', scheme: '1.2.250.1.213.2.5' },
    { code: 'MR', scheme: '1.2.250.1.213.1.1.5.618' },
    { code: 'T-D4000', scheme: '1.2.250.1.213.1.1.5.695' },
  ]);
  t.equal(externalIdOf(k, IDENT.deUniqueId), '1.2.250.1.999.1.1.8121.9.1', 'uniqueId = KOS SOP Instance UID');
  t.equal(externalIdOf(k, IDENT.dePatientId), '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH');
  t.match(externalIdOf(ak, IDENT.dePatientId)!, /^\d{15}\^\^\^&1\.2\.250\.1\.213\.1\.4\.10&ISO\^NH$/, 'same INS form as ANS');
  t.same(slotValues(k, 'languageCode'), ['fr-FR']);
  t.same(slotValues(k, 'hash'), [createHash('sha1').update(kos).digest('hex')]);
  t.same(slotValues(k, 'size'), [String(kos.length)]);
  t.same(slotValues(k, 'creationTime'), ['20240105091500'], 'HL7 TS with zone → UTC DTM');
  t.same(slotValues(k, 'serviceStartTime'), ['20240105082200']);
  t.same(slotValues(k, 'serviceStopTime'), ['20240105084500']);
  t.same(slotValues(k, 'sourcePatientId'), ['IPP-0042^^^&1.2.250.1.999.1.1.8121.1&ISO^PI']);
  t.same(slotValues(k, 'sourcePatientInfo'), ['PID-5|DUPONT^MARIE^ANNE^^^^L', 'PID-7|19790312', 'PID-8|F']);
  t.same(slotValues(k, 'legalAuthenticator'), ['899700367909^RADIO^JEAN^^^DR^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS']);
  t.same(slotValues(k, 'urn:ihe:iti:xds:2013:referenceIdList'), [
    'ACC-2024-0001^^^&1.2.250.1.999.1.1.8121.2&ISO^urn:ihe:iti:xds:2013:accession',
    '1.2.250.1.999.1.1.8121.3.116^^^&1.2.250.1.999.1.1.8121&ISO^urn:ihe:iti:xds:2016:studyInstanceUID',
    'ORD-77^^^&1.2.250.1.999.1.1.8121.4&ISO^urn:ihe:iti:xds:2013:order',
  ]);
  const refRe = /^[^^]+\^\^\^&[\d.]+&ISO\^urn:ihe:iti:xds:201[36]:\w+$/;
  for (const v of slotValues(ak, 'urn:ihe:iti:xds:2013:referenceIdList')) t.match(v, refRe, 'ANS referenceId has the form we write');
  const author = classificationsOf(k, SCHEME.deAuthor)[0];
  t.same(slotValues(author, 'authorPerson'), ['899700367909^RADIO^JEAN^^^DR^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS']);
  t.same(slotValues(author, 'authorInstitution'), ['CENTRE IMAGERIE TEST^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^499700367909006']);
  t.same(slotValues(author, 'authorSpecialty'), ['SM44^Radio-diagnostic et imagerie médicale (SM)^1.2.250.1.71.4.2.5']);

  // submission set
  const ss = byId(ours, 'SubmissionSet01');
  t.equal(externalIdOf(ss, IDENT.ssSourceId), '1.2.250.1.999.1.1.8121');
  t.equal(externalIdOf(ss, IDENT.ssUniqueId), '1.2.250.1.999.1.1.8121.5.1');
  t.same(slotValues(ss, 'submissionTime'), ['20240105100000']);

  // signature entry: same codes as the ANS example, and it covers the documents
  const sig = byId(ours, 'Signature01');
  const asig = byId(ans, 'Signature01');
  for (const s of [SCHEME.classCode, SCHEME.typeCode, SCHEME.formatCode, SCHEME.eventCode, SCHEME.confidentiality]) {
    t.same(codes(sig, s), codes(asig, s), `signature ${s} equals the ANS example`);
  }
  t.equal(attr(sig, 'mimeType'), 'text/xml');
  const sigDoc = built.documents.find((d) => d.id === 'Signature01')!;
  const v = verifySubmissionSignature(sigDoc.content);
  t.equal(v.manifest.get('1.2.250.1.999.1.1.8121.9.1'), sha256Base64(kos), 'manifest digest of the KOS');
  t.equal(v.manifest.get('1.2.250.1.999.1.1.8121.7^CR-1'), sha256Base64(record.cda), 'manifest digest of the report');

  // report entry
  const cr = byId(ours, 'DocumentCR');
  t.equal(attr(cr, 'mimeType'), 'text/xml');
  t.same(codes(cr, SCHEME.typeCode), [{ code: '18748-4', scheme: '2.16.840.1.113883.6.1' }]);
  t.same(codes(cr, SCHEME.classCode), [{ code: '10', scheme: '1.2.250.1.213.1.1.4.1' }]);
});

t.test('options: no report, RPLC, masks, missing data', async (t) => {
  const pki = await dmpTestPki();
  const record = syntheticPublicationRecord({ version: 2 });
  record.flags.masquePs = true;
  const base = {
    kos: { sopInstanceUid: newUid(), part10: fakeKosPart10() },
    submitter: { sourceId: '1.2.250.1.999.1.1.8121', submissionSetUid: newUid(), signatureUid: newUid() },
    signer: { certPem: pki.signer.cert, keyPem: pki.signer.key },
  };
  const built = buildSubmission({ ...base, record, includeReport: false, replaces: { kos: 'urn:uuid:0b4b3d0e-8a43-4f6e-9d6e-2f2c1f0e9a11', report: 'urn:uuid:x' } });
  const rol = descendants(parseXml(built.submitObjectsRequest), 'RegistryObjectList')[0];
  t.notOk(byId(rol, 'DocumentCR'), 'no report entry');
  t.same(built.documents.map((d) => d.id), ['DocumentKOS', 'Signature01']);
  const rplc = elements(rol, 'Association').filter((a) => attr(a, 'associationType') === ASSOCIATION.replace);
  t.equal(rplc.length, 1, 'only the KOS RPLC when the report is off');
  t.equal(attr(rplc[0], 'sourceObject'), 'DocumentKOS');
  t.equal(attr(rplc[0], 'targetObject'), 'urn:uuid:0b4b3d0e-8a43-4f6e-9d6e-2f2c1f0e9a11');
  t.ok(codes(byId(rol, 'DocumentKOS'), SCHEME.confidentiality).some((c) => c.code === 'MASQUE_PS'), 'MASQUE_PS flag becomes a confidentiality code');

  const noPs = syntheticPublicationRecord();
  delete noPs.practiceSetting;
  t.throws(() => buildSubmission({ ...base, record: noPs }), { name: 'XdsBuildError' });
  t.ok(XdsBuildError);
});
