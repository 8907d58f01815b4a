import t from 'tap';
import { readFileSync } from 'node:fs';
import { parsePublicationMessage } from '../../gateway/src/hl7/publication-message.js';
import { Hl7Rejection } from '../../gateway/src/hl7/rejection.js';

const CDA = readFileSync(new URL('../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml', import.meta.url));
const tpl = (name: string) => readFileSync(new URL(`../fixtures/hl7/${name}`, import.meta.url), 'utf8');
const msg = (name: string, cda: Buffer | string = CDA) =>
  tpl(name).replace('{{CDA_BASE64}}', Buffer.isBuffer(cda) ? cda.toString('base64') : cda);

function rejection(fn: () => unknown): Hl7Rejection {
  try {
    fn();
  } catch (e) {
    if (e instanceof Hl7Rejection) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

t.test('ORU^R01 (ANS shape) → publish with the CDA record and the OBX flags', async (t) => {
  const m = parsePublicationMessage(msg('CR-ORU.hl7'));
  if (m.kind !== 'publish') throw t.fail('not publish');
  t.equal(m.messageType, 'ORU^R01');
  t.equal(m.controlId, '{{idMessage}}');
  t.equal(m.record.patient.ins.value, '279035121518989');
  t.equal(m.record.studies.length, 3);
  t.same(m.record.flags, {
    destDmp: true, masquePs: false, invisiblePatient: true, invisibleRepLegaux: true, connexionSecrete: false,
    modifConfCode: false, destmssanteps: false, destmssantepat: false, ackReception: false, ackLectureMss: false,
  });
  t.equal(m.order.placer?.value, '984375862');
  t.equal(m.order.accession, '09011600123');
  t.equal(m.record.studies[0].accessionNumber?.value, '105234751', 'the CDA accession wins over OBR');
  t.ok(m.record.cda.equals(CDA), 'the CDA bytes are kept as received');
});

t.test('Base64 wrapped on several lines or split over repetitions is accepted', async (t) => {
  const b64 = CDA.toString('base64');
  // CR between segments, LF inside the Base64: a sender that wraps at 76 columns
  const fixed = msg('CR-ORU.hl7', '@@').split('\n').join('\r').replace('@@', b64.replace(/(.{76})/g, '$1\n'));
  const m1 = parsePublicationMessage(fixed);
  t.equal(m1.kind, 'publish');
  const half = Math.floor(b64.length / 8) * 4;
  const split = msg('CR-ORU.hl7', `${b64.slice(0, half)}~${b64.slice(half)}`);
  const m2 = parsePublicationMessage(split);
  if (m2.kind !== 'publish') throw t.fail('not publish');
  t.ok(m2.record.cda.equals(CDA));
});

t.test('MDM^T02 → publish with TXA-12 and TXA-17; MDM^T10 gives the parent document', async (t) => {
  const m = parsePublicationMessage(msg('CR-MDM.hl7'));
  if (m.kind !== 'publish') throw t.fail('not publish');
  t.equal(m.messageType, 'MDM^T02');
  t.equal(m.documentUniqueId, '1.2.250.1.213.1.1.1.45.2');
  t.equal(m.completionStatus, 'AU');
  t.equal(m.record.flags.invisiblePatient, true);
  const r = parsePublicationMessage(msg('CR_MAJ-MDM.hl7'));
  if (r.kind !== 'publish') throw t.fail('not publish');
  t.equal(r.messageType, 'MDM^T10');
  t.equal(r.parentDocumentId, '90E1C8EC-F951-4B26-A305-A34848818DD6');
  t.same(r.record.replaces, { root: '90E1C8EC-F951-4B26-A305-A34848818DD6' });
});

t.test('MDM not yet validated (TXA-17 IP) is refused', async (t) => {
  const e = rejection(() => parsePublicationMessage(msg('CR-MDM.hl7').replace('|||||AU|', '|||||IP|')));
  t.equal(e.errorCode, 103);
  t.equal(e.location, 'TXA^1^17');
  t.match(e.message, /not validated/);
});

t.test('ORU with ORC CA and MDM^T04 with ORC CA → depublish', async (t) => {
  const oru = parsePublicationMessage(msg('CR_Depublication-ORU.hl7'));
  if (oru.kind !== 'depublish') throw t.fail('not depublish');
  t.same(oru.documentId, { root: '1.2.250.1.213.1.1.1.45.2' });
  t.same(oru.setId, { root: 'D52DE737-001D-4031-B571-0A0ED7C42300' });
  t.same(oru.patientIns, { value: '279035121518989', oid: '1.2.250.1.213.1.4.10' });
  const mdm = parsePublicationMessage(msg('CR_Depublication-MDM.hl7'));
  t.equal(mdm.kind, 'depublish');
  t.equal(mdm.messageType, 'MDM^T04');
  // a withdrawal without the CDA still names the document through TXA-12
  const bare = msg('CR_Depublication-MDM.hl7').split('\n').filter((l) => !l.startsWith('OBX|1|ED')).join('\n');
  const b = parsePublicationMessage(bare);
  if (b.kind !== 'depublish') throw t.fail('not depublish');
  t.same(b.documentId, { root: '1.2.250.1.213.1.1.1.45.2' });
});

t.test('OMI^O23 → exam-change (ANS samples)', async (t) => {
  const w = parsePublicationMessage(tpl('CR_W_Suppression-OMI.hl7'));
  if (w.kind !== 'exam-change') throw t.fail('not exam-change');
  t.equal(w.orderControl, 'CA');
  t.equal(w.cancelled, true);
  t.equal(w.accessionNumber, 'ACN124');
  t.equal(w.studyInstanceUid, '1.2.250.1.213.4.5.2.1.124');
  t.equal(w.scheduledProcedureStepId, '12346789');
  t.same(w.patientIns, { value: '279035121518989', oid: '1.2.250.1.213.1.4.10' });
  const sample = readFileSync(new URL('../fixtures/ans/ans-drim-m/informatif/HL7v2 OMI^O23 Sample/OMI^O23-ImagingOrder.hl7', import.meta.url), 'utf8');
  const o = parsePublicationMessage(sample);
  if (o.kind !== 'exam-change') throw t.fail('not exam-change');
  t.equal(o.orderControl, 'NW');
  t.equal(o.cancelled, false);
  t.equal(o.accessionNumber, '105234751');
  t.equal(o.modality, 'CT');
  t.equal(o.stationAet, 'PACS_AET');
  t.equal(o.order.placer?.value, '984375862');
});

t.test('refusals carry an HL7 table 0357 code, a location and a plain message', async (t) => {
  const unsupported = rejection(() => parsePublicationMessage(msg('CR-ORU.hl7').replace('ORU^R01^ORU_R01', 'ADT^A01^ADT_A01')));
  t.equal(unsupported.code, 'AR');
  t.equal(unsupported.errorCode, 200);

  const noCda = rejection(() => parsePublicationMessage(msg('CR-ORU.hl7').split('\n').filter((l) => !l.startsWith('OBX|1|ED')).join('\n')));
  t.equal(noCda.errorCode, 101);
  t.match(noCda.message, /no CDA report/);

  const badB64 = rejection(() => parsePublicationMessage(msg('CR-ORU.hl7', 'not*base64!')));
  t.equal(badB64.errorCode, 102);
  t.equal(badB64.location, 'OBX^1^5');

  const notXml = rejection(() => parsePublicationMessage(msg('CR-ORU.hl7', Buffer.from('%PDF-1.4 not xml'))));
  t.equal(notXml.errorCode, 102);
  t.match(notXml.message, /not well-formed XML/);

  const noStudy = CDA.toString('utf8').replace(/<documentationOf>[\s\S]*?<\/documentationOf>/g, '');
  const e1 = rejection(() => parsePublicationMessage(msg('CR-ORU.hl7', Buffer.from(noStudy))));
  t.equal(e1.errorCode, 101);
  t.match(e1.message, /Study Instance UID/);

  const otherPatient = rejection(() => parsePublicationMessage(msg('CR-ORU.hl7').replace('279035121518989^^^ASIP', '185057512345678^^^ASIP')));
  t.equal(otherPatient.errorCode, 207);
  t.equal(otherPatient.location, 'PID^1^3');

  const badFlag = rejection(() => parsePublicationMessage(msg('CR-ORU.hl7').replace('||Y^^expandedYes-NoIndicator||||||F|\nOBX|4', '||MAYBE^^expandedYes-NoIndicator||||||F|\nOBX|4')));
  t.equal(badFlag.errorCode, 103);
  t.equal(badFlag.location, 'OBX^3^5');

  const noTxa = rejection(() => parsePublicationMessage(msg('CR-MDM.hl7').split('\n').filter((l) => !l.startsWith('TXA')).join('\n')));
  t.equal(noTxa.errorCode, 100);
});
