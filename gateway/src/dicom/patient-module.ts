// The patient identifiers of one Part 10 instance: read (identity traits and ids) and rewritten for
// import reconciliation. The rewrite re-encodes only the identifier elements of group 0010 (dcmjs
// writes them in the instance's own transfer syntax) and splices them in: every other byte, pixel
// data included (native or encapsulated), is kept as it was. Pure: Buffers in, Buffers out.
// One instance at a time is held in memory (an instance is bounded; a study is never buffered).
import dicomParser from 'dicom-parser';
import dcmjs from 'dcmjs';
import { readMeta } from './part10.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);

/** An entry of Other Patient IDs Sequence (0010,1002). */
export interface OtherPatientId {
  value: string;
  issuer?: string;
  type?: string;
  /** Issuer of Patient ID Qualifiers: Universal Entity ID (an OID) and its type, Identifier Type Code */
  universalId?: string;
  universalIdType?: string;
  identifierTypeCode?: string;
}

/** What an instance says about its patient. */
export interface PatientHeader {
  patientId?: string;
  issuer?: string;
  /** Issuer of Patient ID Qualifiers' Universal Entity ID */
  issuerOid?: string;
  familyName: string;
  givenNames: string;
  birthDate: string;
  sex: string;
  otherIds: OtherPatientId[];
}

/** The identifiers an instance is to carry. */
export interface PatientIds {
  patientId: string;
  issuer: string;
  issuerOid?: string;
  otherIds: OtherPatientId[];
}

export class PatientModuleError extends Error {
  constructor(message: string) { super(message); this.name = 'PatientModuleError'; }
}

type DataSet = ReturnType<typeof dicomParser.parseDicom>;

function parse(part10: Buffer): { ds: DataSet; ts: string } {
  const meta = readMeta(part10);
  if (!meta) throw new PatientModuleError('truncated Part 10 file');
  if (meta.transferSyntaxUid === EXPLICIT_BE || meta.transferSyntaxUid === DEFLATED) {
    throw new PatientModuleError(`transfer syntax ${meta.transferSyntaxUid} is not supported for import reconciliation`);
  }
  try {
    return { ds: dicomParser.parseDicom(new Uint8Array(part10.buffer, part10.byteOffset, part10.byteLength)), ts: meta.transferSyntaxUid };
  } catch (e) {
    throw new PatientModuleError(`unreadable DICOM dataset: ${(e as { exception?: string }).exception ?? (e as Error).message}`);
  }
}

/** Decodes a text value in the dataset's character set (UTF-8 or Latin-1; ASCII is both). */
function text(ds: DataSet, tag: string, utf8: boolean): string | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0 || el.length === 0xffffffff) return undefined;
  const bytes = Buffer.from(ds.byteArray.buffer, ds.byteArray.byteOffset + el.dataOffset, el.length);
  return bytes.toString(utf8 ? 'utf8' : 'latin1').replace(/[\0 ]+$/, '').trim() || undefined;
}

function isUtf8(ds: DataSet): boolean {
  return /ISO_IR 192/.test(ds.string('x00080005') ?? '');
}

export function readPatientModule(part10: Buffer): PatientHeader {
  const { ds } = parse(part10);
  const utf8 = isUtf8(ds);
  const name = (text(ds, 'x00100010', utf8) ?? '').split('=')[0].split('^');
  const otherIds: OtherPatientId[] = [];
  for (const item of ds.elements.x00101002?.items ?? []) {
    const d = item.dataSet;
    if (!d) continue;
    const value = text(d, 'x00100020', utf8);
    if (!value) continue;
    const q = d.elements.x00100024?.items?.[0]?.dataSet;
    otherIds.push({
      value, issuer: text(d, 'x00100021', utf8), type: text(d, 'x00100022', utf8),
      ...(q ? { universalId: text(q, 'x00400032', utf8), universalIdType: text(q, 'x00400033', utf8), identifierTypeCode: text(q, 'x00400035', utf8) } : {}),
    });
  }
  return {
    patientId: text(ds, 'x00100020', utf8), issuer: text(ds, 'x00100021', utf8),
    issuerOid: ((q) => (q ? text(q, 'x00400032', utf8) : undefined))(ds.elements.x00100024?.items?.[0]?.dataSet),
    familyName: name[0] ?? '', givenNames: name[1] ?? '', birthDate: text(ds, 'x00100030', utf8) ?? '', sex: text(ds, 'x00100040', utf8) ?? '',
    otherIds: otherIds.map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as unknown as OtherPatientId),
  };
}

/** identifier elements this module owns in group 0010: dropped from the instance, written anew */
const REPLACED = new Set(['x00100000', 'x00100020', 'x00100021', 'x00100022', 'x00100024', 'x00101002']);

function qualifiers(o: { universalId?: string; universalIdType?: string; identifierTypeCode?: string }): Record<string, unknown>[] | undefined {
  if (!o.universalId && !o.identifierTypeCode) return undefined;
  const q: Record<string, unknown> = {};
  if (o.universalId) { q.UniversalEntityID = o.universalId; q.UniversalEntityIDType = o.universalIdType ?? 'ISO'; }
  if (o.identifierTypeCode) q.IdentifierTypeCode = o.identifierTypeCode;
  return [q];
}

/** The new identifier elements, each encoded alone in the instance's transfer syntax: tag → bytes. */
function encodeIds(ids: PatientIds, ts: string): Map<string, Buffer> {
  const items = ids.otherIds.map((o) => {
    const it: Record<string, unknown> = { PatientID: o.value, TypeOfPatientID: o.type ?? 'TEXT' };
    if (o.issuer) it.IssuerOfPatientID = o.issuer;
    const q = qualifiers(o);
    if (q) it.IssuerOfPatientIDQualifiersSequence = q;
    return it;
  });
  const wanted: [string, Record<string, unknown>][] = [
    ['x00100020', { PatientID: ids.patientId }],
    ['x00100021', { IssuerOfPatientID: ids.issuer }],
    ['x00100022', { TypeOfPatientID: 'TEXT' }],
  ];
  const q = qualifiers({ universalId: ids.issuerOid });
  if (q) wanted.push(['x00100024', { IssuerOfPatientIDQualifiersSequence: q }]);
  if (items.length) wanted.push(['x00101002', { OtherPatientIDsSequence: items }]);
  // encapsulated syntaxes encode the dataset in explicit VR little endian
  const writeTs = ts === IMPLICIT_LE ? IMPLICIT_LE : '1.2.840.10008.1.2.1';
  const out = new Map<string, Buffer>();
  for (const [tag, natural] of wanted) {
    const d = new DicomDict(DicomMetaDictionary.denaturalizeDataset({
      TransferSyntaxUID: writeTs, MediaStorageSOPClassUID: '1.2', MediaStorageSOPInstanceUID: '1.2', FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    }));
    d.dict = DicomMetaDictionary.denaturalizeDataset(natural);
    const file = Buffer.from(d.write());
    out.set(tag, file.subarray(readMeta(file)!.datasetOffset));
  }
  return out;
}

/**
 * The instance with its patient identifiers replaced by `ids` (Patient ID, its issuer and
 * qualifiers, Other Patient IDs Sequence); the rest of the file byte for byte.
 */
export function rewritePatientIds(part10: Buffer, ids: PatientIds): Buffer {
  const { ds, ts } = parse(part10);
  const implicit = ts === IMPLICIT_LE;
  // top-level elements in file order, each from its header's first byte to the next element's
  const els = Object.values(ds.elements).filter((e) => !e.tag.startsWith('x0002'))
    .map((e) => ({ tag: e.tag, start: e.dataOffset - (implicit ? 8 : LONG_VRS.has(e.vr ?? '') ? 12 : 8) }))
    .sort((a, b) => a.start - b.start);
  const group = (tag: string) => tag.slice(1, 5).toLowerCase();
  const endOf = (i: number) => (i + 1 < els.length ? els[i + 1].start : part10.length);
  const inGroup = els.map((e, i) => ({ ...e, i })).filter((e) => group(e.tag) === '0010');
  const firstAfter = els.find((e) => group(e.tag) > '0010');
  const regionStart = inGroup[0]?.start ?? firstAfter?.start ?? part10.length;
  const regionEnd = inGroup.length ? endOf(inGroup[inGroup.length - 1].i) : regionStart;
  const pieces: { tag: string; bytes: Buffer }[] = inGroup
    .filter((e) => !REPLACED.has(e.tag))
    .map((e) => ({ tag: e.tag, bytes: part10.subarray(e.start, endOf(e.i)) }));
  for (const [tag, bytes] of encodeIds(ids, ts)) pieces.push({ tag, bytes });
  pieces.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  return Buffer.concat([part10.subarray(0, regionStart), ...pieces.map((p) => p.bytes), part10.subarray(regionEnd)]);
}
