// What a RIS message means for the box: publish a report, withdraw one, or announce an exam change.
// ORU^R01 / MDM^T02|T10 carry a CDA R2 report (Base64 in an ED OBX) and CE/CWE OBX flags;
// ORC-1 = CA (ORU or MDM^T04/T11) withdraws it; OMI^O23 announces an exam change (IPC segment).
import { CdaError, INS_OIDS, readCda } from '../cda/read.js';
import type { InstanceIdentifier, PublicationRecord } from '../cda/types.js';
import { componentOf, parseHl7, type Hl7Message, type Hl7Segment } from './message.js';
import { Hl7Rejection } from './rejection.js';

export interface OrderIds {
  placer?: { value: string; issuer?: string };
  filler?: { value: string; issuer?: string };
  accession?: string;
}

interface Common {
  controlId: string;
  /** e.g. `ORU^R01`, `MDM^T02`, `OMI^O23` */
  messageType: string;
}

export interface PublishMessage extends Common {
  kind: 'publish';
  record: PublicationRecord;
  /** MDM TXA-12 unique document number (document id as the RIS sees it) */
  documentUniqueId?: string;
  /** MDM TXA-13 parent document number (replaced document), when given */
  parentDocumentId?: string;
  /** MDM TXA-17 completion status (AU, LA, …) */
  completionStatus?: string;
  order: OrderIds;
}

export interface DepublishMessage extends Common {
  kind: 'depublish';
  documentId?: InstanceIdentifier;
  setId?: InstanceIdentifier;
  patientIns?: { value: string; oid: string };
  /** the CDA carried along (the ANS messages repeat the withdrawn report) */
  record?: PublicationRecord;
  documentUniqueId?: string;
  order: OrderIds;
}

export interface ExamChangeMessage extends Common {
  kind: 'exam-change';
  /** ORC-1: NW new, CA cancel, XO change, SC status changed, … */
  orderControl: string;
  orderStatus?: string;
  cancelled: boolean;
  patientIns?: { value: string; oid: string };
  order: OrderIds;
  accessionNumber?: string;
  requestedProcedureId?: string;
  studyInstanceUid?: string;
  scheduledProcedureStepId?: string;
  modality?: string;
  stationAet?: string;
  note?: string;
}

export type PublicationMessage = PublishMessage | DepublishMessage | ExamChangeMessage;

const INS_OID_SET = new Set<string>(Object.values(INS_OIDS));

/** Flag OBX codes → record.flags keys (others become camelCase of their code). */
const FLAG_KEYS: Record<string, string> = { DESTDMP: 'destDmp', MASQUE_PS: 'masquePs', INVISIBLE_PATIENT: 'invisiblePatient' };
function flagKey(code: string): string {
  return FLAG_KEYS[code] ?? code.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function loc(msg: Hl7Message, seg: Hl7Segment, field?: number): string {
  return `${seg.name}^${msg.occurrence(seg)}${field ? `^${field}` : ''}`;
}

function reject(errorCode: 100 | 101 | 102 | 103 | 200 | 207, location: string, message: string, code: 'AE' | 'AR' = 'AE'): never {
  throw new Hl7Rejection({ code, errorCode, location, message });
}

function patientInsFromPid(msg: Hl7Message): { value: string; oid: string } | undefined {
  const pid = msg.first('PID');
  if (!pid) return undefined;
  for (const rep of pid.repetitions(3)) {
    const d = msg.delimiters;
    const value = componentOf(rep, d, 1);
    const oid = componentOf(rep, d, 4, 2);
    const type = componentOf(rep, d, 5);
    if (value && (INS_OID_SET.has(oid) || /^INS/.test(type))) return { value, oid };
  }
  return undefined;
}

function orderIds(msg: Hl7Message): OrderIds {
  const obr = msg.first('OBR');
  const orc = msg.first('ORC');
  const out: OrderIds = {};
  const placer = obr?.get(2, 1) || orc?.get(2, 1);
  if (placer) out.placer = { value: placer, issuer: (obr?.get(2, 3) || obr?.get(2, 2) || undefined) };
  const filler = obr?.get(3, 1) || orc?.get(3, 1);
  if (filler) out.filler = { value: filler, issuer: (obr?.get(3, 3) || obr?.get(3, 2) || undefined) };
  const acc = obr?.get(18, 1);
  if (acc) out.accession = acc;
  return out;
}

/** The CDA carried by the first ED OBX (Base64; may be split over repetitions). */
function cdaFromMessage(msg: Hl7Message): { cda: Buffer; obx: Hl7Segment } | undefined {
  const obx = msg.all('OBX').find((s) => s.get(2).toUpperCase() === 'ED');
  if (!obx) return undefined;
  const d = msg.delimiters;
  const reps = obx.repetitions(5);
  if (reps.length === 0) reject(101, loc(msg, obx, 5), 'The report OBX (type ED) has no content in OBX-5.');
  const encoding = componentOf(reps[0], d, 4);
  if (encoding.toLowerCase() !== 'base64') {
    reject(102, loc(msg, obx, 5), `The report in OBX-5 must be Base64 encoded (^TEXT^XML^Base64^…), found encoding "${encoding || 'none'}".`);
  }
  // first repetition: ^TEXT^XML^Base64^<data>; a sender that splits the data puts the rest in later repetitions
  let b64 = componentOf(reps[0], d, 5);
  for (const r of reps.slice(1)) b64 += r.includes(d.component) ? componentOf(r, d, 5) : r;
  b64 = b64.replace(/\s+/g, '');
  if (!b64) reject(101, loc(msg, obx, 5), 'The report OBX-5 holds no Base64 data.');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 === 1) {
    reject(102, loc(msg, obx, 5), 'The report in OBX-5 is not valid Base64.');
  }
  return { cda: Buffer.from(b64, 'base64'), obx };
}

function readFlags(msg: Hl7Message): PublicationRecord['flags'] {
  const flags: PublicationRecord['flags'] = { destDmp: true, masquePs: false, invisiblePatient: false };
  for (const obx of msg.all('OBX')) {
    const type = obx.get(2).toUpperCase();
    if (type !== 'CE' && type !== 'CWE') continue;
    const code = obx.get(3, 1);
    if (!code) continue;
    const v = obx.get(5, 1).toUpperCase();
    if (v !== 'Y' && v !== 'N') {
      reject(103, loc(msg, obx, 5), `The flag ${code} must be Y or N (found "${obx.get(5, 1)}").`);
    }
    flags[flagKey(code)] = v === 'Y';
  }
  return flags;
}

function readRecord(msg: Hl7Message, cda: Buffer, obx: Hl7Segment): PublicationRecord {
  try {
    return readCda(cda, { flags: readFlags(msg) });
  } catch (e) {
    if (e instanceof CdaError) {
      const errorCode = e.code === 'missing-field' ? 101 : e.code === 'bad-value' ? 103 : 102;
      reject(errorCode, loc(msg, obx, 5), `The CDA report in OBX-5 was refused: ${e.message}`);
    }
    throw e;
  }
}

/** HL7 order ids fill what the CDA leaves out (accession, placer order), never override it. */
function completeFromOrder(record: PublicationRecord, order: OrderIds): void {
  const acc = order.accession ?? order.filler?.value;
  for (const s of record.studies) {
    if (!s.accessionNumber && acc) s.accessionNumber = { value: acc, ...(order.filler?.issuer && /^[0-9.]+$/.test(order.filler.issuer) ? { issuerOid: order.filler.issuer } : {}) };
    if (!s.placerOrderNumber && order.placer) s.placerOrderNumber = { value: order.placer.value, ...(order.placer.issuer && /^[0-9.]+$/.test(order.placer.issuer) ? { issuerOid: order.placer.issuer } : {}) };
  }
}

function checkPatient(msg: Hl7Message, record: PublicationRecord): void {
  const pidIns = patientInsFromPid(msg);
  const pid = msg.first('PID');
  if (pidIns && pid && pidIns.value !== record.patient.ins.value) {
    reject(207, loc(msg, pid, 3), `The patient INS in PID-3 (${pidIns.value}) is not the INS of the CDA report (${record.patient.ins.value}); the report was not accepted.`);
  }
}

/**
 * Parse and interpret one RIS message. Throws Hl7Rejection (AE/AR with a table-0357 code) for
 * anything the box cannot act on.
 */
export function parsePublicationMessage(raw: string | Hl7Message): PublicationMessage {
  const msg = typeof raw === 'string' ? parseHl7(raw) : raw;
  const t = msg.messageType;
  const messageType = `${t.code}^${t.event}`;
  const controlId = msg.controlId;
  if (!controlId) reject(101, 'MSH^1^10', 'MSH-10 (message control id) is empty.', 'AR');
  const orc = msg.first('ORC');
  const orderControl = orc?.get(1).toUpperCase() ?? '';
  const order = orderIds(msg);

  if (t.code === 'OMI' && t.event === 'O23') {
    const ipc = msg.first('IPC');
    const obx = msg.first('OBX');
    const out: ExamChangeMessage = {
      kind: 'exam-change', controlId, messageType, orderControl,
      cancelled: orderControl === 'CA' || orderControl === 'DC',
      order,
    };
    const status = orc?.get(5);
    if (status) out.orderStatus = status;
    const ins = patientInsFromPid(msg);
    if (ins) out.patientIns = ins;
    const set = (k: keyof ExamChangeMessage, v: string | undefined) => { if (v) (out as unknown as Record<string, string>)[k] = v; };
    set('accessionNumber', ipc?.get(1));
    set('requestedProcedureId', ipc?.get(2));
    set('studyInstanceUid', ipc?.get(3));
    set('scheduledProcedureStepId', ipc?.get(4));
    set('modality', ipc?.get(5));
    set('stationAet', ipc?.get(9));
    set('note', obx?.get(5) || obx?.get(3, 2) || obx?.get(3, 1));
    if (!out.accessionNumber && !out.studyInstanceUid && !order.placer && !order.filler) {
      reject(101, ipc ? loc(msg, ipc) : 'IPC', 'The exam change names no exam (no IPC accession number / study UID, no order number).');
    }
    return out;
  }

  const isOru = t.code === 'ORU' && t.event === 'R01';
  const isMdm = t.code === 'MDM' && ['T02', 'T04', 'T10', 'T11'].includes(t.event);
  if (!isOru && !isMdm) {
    reject(200, 'MSH^1^9', `Message type ${messageType} is not handled here; send ORU^R01, MDM^T02/T04/T10/T11 or OMI^O23.`, 'AR');
  }

  const txa = msg.first('TXA');
  if (isMdm && !txa) reject(100, 'TXA', 'An MDM message must carry a TXA segment.', 'AR');
  const documentUniqueId = txa?.get(12, 1) || undefined;
  const availability = txa?.get(19).toUpperCase();
  const withdraw = orderControl === 'CA' || (isMdm && (t.event === 'T11' || availability === 'CA'));

  const carried = cdaFromMessage(msg);
  if (withdraw) {
    const out: DepublishMessage = { kind: 'depublish', controlId, messageType, order };
    if (documentUniqueId) out.documentUniqueId = documentUniqueId;
    const ins = patientInsFromPid(msg);
    if (ins) out.patientIns = ins;
    if (carried) {
      const record = readRecord(msg, carried.cda, carried.obx);
      checkPatient(msg, record);
      out.record = record;
      out.documentId = record.documentId;
      out.setId = record.setId;
      out.patientIns = record.patient.ins;
    } else if (documentUniqueId) {
      out.documentId = { root: documentUniqueId };
    }
    if (!out.documentId && !out.setId) {
      reject(101, 'OBX', 'The withdrawal names no document: send the withdrawn CDA in an ED OBX (or TXA-12 for MDM).');
    }
    return out;
  }

  if (!carried) reject(101, 'OBX', 'The message carries no CDA report (expected an OBX of type ED with ^TEXT^XML^Base64^<report>).');
  if (isMdm) {
    const status = txa!.get(17).toUpperCase();
    if (status && !['AU', 'LA'].includes(status)) {
      reject(103, loc(msg, txa!, 17), `The report is not validated (TXA-17 completion status "${status}"); only authenticated reports (AU or LA) are published.`);
    }
  }
  const record = readRecord(msg, carried.cda, carried.obx);
  checkPatient(msg, record);
  completeFromOrder(record, order);
  const out: PublishMessage = { kind: 'publish', controlId, messageType, record, order };
  if (documentUniqueId) out.documentUniqueId = documentUniqueId;
  const parent = txa?.get(13, 1);
  if (parent) out.parentDocumentId = parent;
  const completion = txa?.get(17);
  if (completion) out.completionStatus = completion;
  return out;
}
