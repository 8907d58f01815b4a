// The DRIM-M manifest: a Key Object Selection Document (TID 2010) referencing every instance of the
// exam, with Retrieve URLs pointing back at this box (DRIM-M.md §2). Built as a dcmjs dataset and
// written as Part 10 explicit VR little endian, UTF-8 (ISO_IR 192). parseKos reads any KOS (ours, the
// ANS samples, IOCM rejection notes from a PACS).
import dcmjs from 'dcmjs';
import dicomParser from 'dicom-parser';
import { inflateRawSync } from 'node:zlib';
import type { Code, PublicationRecord, StudyReference } from '../cda/types.js';
import { isImageSopClass, newUid } from './uid.js';

import { encodePart10, type Dataset } from './kos-encode.js';
import { normaliseDa, normaliseTm } from './kos-dates.js';

const { DicomMetaDictionary } = dcmjs.data;

export const KOS_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.59';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLEMENTATION_CLASS_UID = '2.25.161356017143929186713926316546377227031';
const IMPLEMENTATION_VERSION = 'DRIMBOX_0_1';

export const INS_ISSUER_NAMES: Record<string, string> = {
  '1.2.250.1.213.1.4.8': 'ASIP-SANTE-INS-NIR',
  '1.2.250.1.213.1.4.9': 'ASIP-SANTE-INS-NIA',
  // the ANS test data set labels the test INS-NIR OID with the production issuer name
  '1.2.250.1.213.1.4.10': 'ASIP-SANTE-INS-NIR',
};

/** Document titles (CID 7010) a box meets: the manifest, and the IOCM rejection notes. */
export const KOS_TITLES = {
  manifest: { code: '113030', meaning: 'Manifest' },
  rejectedForQuality: { code: '113001', meaning: 'Rejected for Quality Reasons' },
  rejectedForPatientSafety: { code: '113037', meaning: 'Rejected for Patient Safety Reasons' },
  incorrectModalityWorklist: { code: '113038', meaning: 'Incorrect Modality Worklist Entry' },
  dataRetentionExpired: { code: '113039', meaning: 'Data Retention Policy Expired' },
} as const;
export const REJECTION_TITLE_CODES = new Set(['113001', '113037', '113038', '113039']);

export interface KosInstance {
  studyUid: string;
  seriesUid: string;
  sopClassUid: string;
  sopInstanceUid: string;
}

export interface BuildKosInput {
  record: PublicationRecord;
  /** the exam the KOS belongs to (its StudyInstanceUID becomes the KOS study) */
  study: StudyReference;
  instances: KosInstance[];
  /** what the PACS says about the patient / study: used for the study module and as an extra patient id */
  patientFromPacs?: {
    patientId?: string;
    issuerOfPatientId?: string;
    patientName?: string;
    studyDate?: string;
    studyTime?: string;
    studyId?: string;
    studyDescription?: string;
    referringPhysicianName?: string;
  };
  /** base of this box's DICOMweb service as peers reach it, e.g. https://box.example:8443/dicom-web */
  retrieveBaseUrl: string;
  /** this box's UID (RetrieveLocationUID) */
  retrieveLocationUid: string;
  /** UID root for the new series / SOP instance UIDs (default: 2.25.<uuid>) */
  uidRoot?: string;
  now?: Date;
  /** optional Key Object Description (113012) */
  description?: string;
  /** default (113030, DCM, "Manifest"); others of CID 7010 for tests and rejection notes */
  title?: { code: string; meaning: string };
  seriesNumber?: number;
  manufacturer?: string;
}

export interface BuiltKos {
  part10: Buffer;
  sopInstanceUid: string;
  seriesInstanceUid: string;
}

// ---- small helpers ----------------------------------------------------------------------------

const SCHEME_DESIGNATORS: Record<string, string> = {
  '2.16.840.1.113883.6.1': 'LN',
  '1.2.840.10008.2.16.4': 'DCM',
  '2.16.840.1.113883.6.96': 'SCT',
  '1.2.250.1.213.2.5': 'CCAM',
};

function lo(s: string | undefined, max = 64): string {
  return (s ?? '').replace(/[\\\r\n]/g, ' ').slice(0, max);
}

function codeItem(c: Code): Record<string, unknown> | undefined {
  const scheme = SCHEME_DESIGNATORS[c.codeSystem];
  if (!scheme || !c.code) return undefined;
  return { CodeValue: lo(c.code, 16), CodingSchemeDesignator: scheme, CodeMeaning: lo(c.displayName || c.code) };
}

function pn(family: string, given: string[]): string {
  const first = given[0] ?? '';
  const middle = given.slice(1).join(' ');
  const parts = [family, first, middle].map((p) => p.replace(/[\^=\\]/g, ' ').trim());
  while (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts.join('^');
}

function da(d: Date): string {
  return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
}
function tm(d: Date): string {
  return `${String(d.getHours()).padStart(2, '0')}${String(d.getMinutes()).padStart(2, '0')}${String(d.getSeconds()).padStart(2, '0')}`;
}

function issuerSeq(oid: string | undefined): Record<string, unknown>[] | undefined {
  return oid ? [{ UniversalEntityID: oid, UniversalEntityIDType: 'ISO' }] : undefined;
}

function requestItem(s: StudyReference): Record<string, unknown> {
  const item: Record<string, unknown> = {
    StudyInstanceUID: s.studyInstanceUid,
    ReferencedStudySequence: [],
    AccessionNumber: lo(s.accessionNumber?.value, 16),
    PlacerOrderNumberImagingServiceRequest: lo(s.placerOrderNumber?.value),
    FillerOrderNumberImagingServiceRequest: '',
    RequestedProcedureID: '',
    RequestedProcedureDescription: lo(s.actCode?.displayName),
    RequestedProcedureCodeSequence: [],
  };
  const accIssuer = issuerSeq(s.accessionNumber?.issuerOid);
  if (accIssuer) item.IssuerOfAccessionNumberSequence = accIssuer;
  const placerIssuer = issuerSeq(s.placerOrderNumber?.issuerOid);
  if (placerIssuer) item.OrderPlacerIdentifierSequence = placerIssuer;
  const proc = (s.actCode && codeItem(s.actCode)) ?? (s.ccamCode && codeItem(s.ccamCode));
  if (proc) item.RequestedProcedureCodeSequence = [proc];
  return item;
}

// ---- builder ----------------------------------------------------------------------------------

export function buildKos(input: BuildKosInput): BuiltKos {
  const { record, study, instances } = input;
  if (instances.length === 0) throw new Error('A KOS must reference at least one instance');
  const now = input.now ?? new Date();
  const sopInstanceUid = newUid(input.uidRoot);
  const seriesInstanceUid = newUid(input.uidRoot);
  const base = input.retrieveBaseUrl.replace(/\/+$/, '');
  const pacs = input.patientFromPacs ?? {};
  const patient = record.patient;
  const title = input.title ?? KOS_TITLES.manifest;

  // evidence: study → series → instances, in first-seen order; duplicates dropped
  const seen = new Set<string>();
  const byStudy = new Map<string, Map<string, KosInstance[]>>();
  const unique: KosInstance[] = [];
  for (const inst of instances) {
    if (seen.has(inst.sopInstanceUid)) continue;
    seen.add(inst.sopInstanceUid);
    unique.push(inst);
    let series = byStudy.get(inst.studyUid);
    if (!series) byStudy.set(inst.studyUid, (series = new Map()));
    let list = series.get(inst.seriesUid);
    if (!list) series.set(inst.seriesUid, (list = []));
    list.push(inst);
  }
  const evidence = [...byStudy].map(([studyUid, series]) => ({
    StudyInstanceUID: studyUid,
    ReferencedSeriesSequence: [...series].map(([seriesUid, list]) => ({
      SeriesInstanceUID: seriesUid,
      RetrieveURL: `${base}/studies/${studyUid}/series/${seriesUid}`,
      RetrieveLocationUID: input.retrieveLocationUid,
      ReferencedSOPSequence: list.map((i) => ({ ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid })),
    })),
  }));

  // one request item per referenced study (the report's StudyReference when it knows the study)
  const studyRefs = new Map<string, StudyReference>();
  studyRefs.set(study.studyInstanceUid, study);
  for (const s of record.studies) if (!studyRefs.has(s.studyInstanceUid)) studyRefs.set(s.studyInstanceUid, s);
  const requestStudies = [study.studyInstanceUid, ...[...byStudy.keys()].filter((u) => u !== study.studyInstanceUid)];
  const requests = requestStudies.map((uid) => requestItem(studyRefs.get(uid) ?? { studyInstanceUid: uid, modalities: [], anatomicRegions: [] }));

  const content: Record<string, unknown>[] = [];
  if (input.description) {
    content.push({
      RelationshipType: 'CONTAINS',
      ValueType: 'TEXT',
      ConceptNameCodeSequence: [{ CodeValue: '113012', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Key Object Description' }],
      TextValue: input.description,
    });
  }
  for (const i of unique) {
    // keys in tag order: the encoder then writes without sorting
    content.push({
      ReferencedSOPSequence: [{ ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid }],
      RelationshipType: 'CONTAINS',
      ValueType: isImageSopClass(i.sopClassUid) ? 'IMAGE' : 'COMPOSITE',
    });
  }

  const otherIds: Record<string, unknown>[] = [];
  if (patient.ipp) {
    otherIds.push({
      PatientID: lo(patient.ipp.value),
      TypeOfPatientID: 'TEXT',
      IssuerOfPatientIDQualifiersSequence: issuerSeq(patient.ipp.oid),
    });
  }
  if (pacs.patientId && pacs.patientId !== patient.ipp?.value && pacs.patientId !== patient.ins.value) {
    const o: Record<string, unknown> = { PatientID: lo(pacs.patientId), TypeOfPatientID: 'TEXT' };
    if (pacs.issuerOfPatientId) o.IssuerOfPatientID = lo(pacs.issuerOfPatientId);
    otherIds.push(o);
  }

  const startTime = study.startTime ?? '';
  const ds: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 192',
    InstanceCreationDate: da(now),
    InstanceCreationTime: tm(now),
    SOPClassUID: KOS_SOP_CLASS,
    SOPInstanceUID: sopInstanceUid,
    // the PACS may hand out legacy forms ("11:20:00"): copied in today's DA/TM form
    StudyDate: normaliseDa(pacs.studyDate ?? startTime.slice(0, 8)),
    SeriesDate: da(now),
    ContentDate: da(now),
    StudyTime: normaliseTm(pacs.studyTime ?? (startTime.length >= 12 ? startTime.slice(8, 14).replace(/[^0-9]/g, '') : '')),
    SeriesTime: tm(now),
    ContentTime: tm(now),
    AccessionNumber: lo(study.accessionNumber?.value, 16),
    Modality: 'KO',
    Manufacturer: input.manufacturer ?? 'DRIMbox',
    ReferringPhysicianName: pacs.referringPhysicianName ?? '',
    StudyDescription: lo(pacs.studyDescription ?? study.actCode?.displayName),
    SeriesDescription: 'DRIM-M manifest',
    ReferencedPerformedProcedureStepSequence: [],
    PatientName: pn(patient.birthName, patient.givenNames),
    PatientID: patient.ins.value,
    IssuerOfPatientID: INS_ISSUER_NAMES[patient.ins.oid] ?? patient.ins.oid,
    IssuerOfPatientIDQualifiersSequence: issuerSeq(patient.ins.oid),
    PatientBirthDate: patient.birthDate,
    PatientSex: patient.sex === 'U' ? 'O' : patient.sex,
    StudyInstanceUID: study.studyInstanceUid,
    SeriesInstanceUID: seriesInstanceUid,
    StudyID: lo(pacs.studyId ?? '', 16),
    SeriesNumber: String(input.seriesNumber ?? 999),
    InstanceNumber: String(record.versionNumber || 1),
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [{ CodeValue: title.code, CodingSchemeDesignator: 'DCM', CodeMeaning: title.meaning }],
    ContinuityOfContent: 'SEPARATE',
    ReferencedRequestSequence: requests,
    CurrentRequestedProcedureEvidenceSequence: evidence,
    ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '2010' }],
    ContentSequence: content,
  };
  const accIssuer = issuerSeq(study.accessionNumber?.issuerOid);
  if (accIssuer) ds.IssuerOfAccessionNumberSequence = accIssuer;
  if (otherIds.length) ds.OtherPatientIDsSequence = otherIds;
  if (record.custodian?.name) ds.InstitutionName = lo(record.custodian.name);

  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: KOS_SOP_CLASS,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
  };
  const part10 = encodePart10(meta as Dataset, ds as Dataset);
  return { part10, sopInstanceUid, seriesInstanceUid };
}

// ---- parser -----------------------------------------------------------------------------------

export interface ParsedKos {
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  modality?: string;
  title: { code: string; scheme: string; meaning: string };
  /** title is one of the IOCM rejection notes (113001/113037/113038/113039) */
  isRejectionNote: boolean;
  template?: { mappingResource?: string; templateId?: string };
  patient: {
    id: string;
    issuer?: string;
    issuerOid?: string;
    name?: string;
    birthDate?: string;
    sex?: string;
    otherIds: { id: string; issuer?: string; issuerOid?: string }[];
  };
  accessionNumber?: string;
  studies: {
    studyUid: string;
    accession?: { value: string; issuerOid?: string };
    placerOrder?: { value: string; issuerOid?: string };
    series: {
      seriesUid: string;
      retrieveUrl?: string;
      retrieveLocationUid?: string;
      retrieveAeTitle?: string;
      instances: { sopClassUid: string; sopInstanceUid: string }[];
    }[];
  }[];
  /** ContentSequence items referencing instances (and the TEXT description, if any) */
  content: { relationship?: string; valueType: string; sopClassUid?: string; sopInstanceUid?: string; concept?: string; text?: string }[];
  description?: string;
  contentDate?: string;
  contentTime?: string;
}

export class KosParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KosParseError';
  }
}

type Ds = Record<string, any>;
const arr = (v: unknown): Ds[] => (Array.isArray(v) ? (v as Ds[]) : v && typeof v === 'object' ? [v as Ds] : []);
const str = (v: unknown): string | undefined => {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.length ? str(v[0]) : undefined;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('Alphabetic' in o) return String(o.Alphabetic ?? '');
    return undefined;
  }
  const s = String(v).trim();
  return s === '' ? undefined : s;
};

// dicom-parser (fast, zero-copy) → a naturalized object keyed by DICOM keyword; strings decoded by
// SpecificCharacterSet (UTF-8 or Latin-1), binary values skipped.
const keywordOf = new Map<string, { name: string; vr: string }>();
function dictEntry(tag: string): { name: string; vr: string } | undefined {
  // dicom-parser tag form: x00080016
  let e = keywordOf.get(tag);
  if (e) return e;
  const key = `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5, 9).toUpperCase()})`;
  const d = DicomMetaDictionary.dictionary[key];
  if (!d) return undefined;
  e = { name: d.name as string, vr: String(d.vr).slice(0, 2) };
  keywordOf.set(tag, e);
  return e;
}
const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN', 'SQ']);

function naturalize(set: any, bytes: Uint8Array, decoder: TextDecoder): Ds {
  const out: Ds = {};
  for (const tag of Object.keys(set.elements)) {
    const el = set.elements[tag];
    const d = dictEntry(tag);
    if (!d) continue;
    if (el.items) {
      out[d.name] = el.items.map((it: any) => (it.dataSet ? naturalize(it.dataSet, bytes, decoder) : {}));
      continue;
    }
    const vr = el.vr ?? d.vr;
    if (BINARY_VRS.has(vr)) continue;
    if (vr === 'US') out[d.name] = set.uint16(tag);
    else if (vr === 'UL') out[d.name] = set.uint32(tag);
    else if (vr === 'SS' || vr === 'SL' || vr === 'FL' || vr === 'FD' || vr === 'AT') continue;
    else {
      const raw = bytes.subarray(el.dataOffset, el.dataOffset + el.length);
      // UIDs are ASCII: read them in place (no copy); text goes through the character set's decoder
      const s = (vr === 'UI' ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1') : decoder.decode(raw)).replace(/[\0 ]+$/, '');
      out[d.name] = vr === 'UT' || vr === 'LT' || vr === 'ST' || vr === 'UR' ? s : s.split('\\').map((x) => x.trim());
    }
  }
  return out;
}

/** Read a Part 10 file into a naturalized dataset (keyword → value). */
export function readDataset(part10: Buffer): Ds {
  let set: any;
  const bytes = new Uint8Array(part10.buffer, part10.byteOffset, part10.byteLength);
  try {
    set = dicomParser.parseDicom(bytes, {
      vrCallback: ((tag: string) => dictEntry(tag)?.vr) as unknown as (tag: string) => void,
      // deflated explicit VR LE: inflate the dataset after the meta header
      inflater: (arr: Uint8Array, pos: number) => {
        const inflated = inflateRawSync(arr.subarray(pos));
        const out = new Uint8Array(pos + inflated.length);
        out.set(arr.subarray(0, pos));
        out.set(inflated, pos);
        return out;
      },
    } as Parameters<typeof dicomParser.parseDicom>[1]);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new KosParseError(`Not a readable DICOM Part 10 file: ${msg}`);
  }
  const cs = set.string('x00080005') ?? '';
  const decoder = new TextDecoder(/192/.test(cs) ? 'utf-8' : 'latin1');
  return naturalize(set, set.byteArray as Uint8Array, decoder);
}

export function parseKos(part10: Buffer): ParsedKos {
  const ds = readDataset(part10);
  const sopClassUid = str(ds.SOPClassUID) ?? '';
  if (sopClassUid !== KOS_SOP_CLASS) {
    throw new KosParseError(`Not a Key Object Selection Document (SOP class ${sopClassUid || 'missing'})`);
  }
  const t = arr(ds.ConceptNameCodeSequence)[0] ?? {};
  const title = { code: str(t.CodeValue) ?? '', scheme: str(t.CodingSchemeDesignator) ?? '', meaning: str(t.CodeMeaning) ?? '' };
  const tpl = arr(ds.ContentTemplateSequence)[0];

  const requests = new Map<string, Ds>();
  for (const r of arr(ds.ReferencedRequestSequence)) {
    const uid = str(r.StudyInstanceUID);
    if (uid && !requests.has(uid)) requests.set(uid, r);
  }
  const kosStudy = str(ds.StudyInstanceUID) ?? '';
  const topAcc = str(ds.AccessionNumber);

  const studies: ParsedKos['studies'] = arr(ds.CurrentRequestedProcedureEvidenceSequence).map((st) => {
    const studyUid = str(st.StudyInstanceUID) ?? '';
    const req = requests.get(studyUid);
    const out: ParsedKos['studies'][number] = {
      studyUid,
      series: arr(st.ReferencedSeriesSequence).map((se) => {
        const s: ParsedKos['studies'][number]['series'][number] = {
          seriesUid: str(se.SeriesInstanceUID) ?? '',
          instances: arr(se.ReferencedSOPSequence).map((i) => ({
            sopClassUid: str(i.ReferencedSOPClassUID) ?? '',
            sopInstanceUid: str(i.ReferencedSOPInstanceUID) ?? '',
          })),
        };
        const url = str(se.RetrieveURL) ?? str(se.RetrieveURI);
        if (url) s.retrieveUrl = url;
        const loc = str(se.RetrieveLocationUID);
        if (loc) s.retrieveLocationUid = loc;
        const aet = str(se.RetrieveAETitle);
        if (aet) s.retrieveAeTitle = aet;
        return s;
      }),
    };
    const acc = str(req?.AccessionNumber) ?? (studyUid === kosStudy ? topAcc : undefined);
    if (acc) {
      const issuerOid = str(arr(req?.IssuerOfAccessionNumberSequence)[0]?.UniversalEntityID)
        ?? (studyUid === kosStudy ? str(arr(ds.IssuerOfAccessionNumberSequence)[0]?.UniversalEntityID) : undefined);
      out.accession = issuerOid ? { value: acc, issuerOid } : { value: acc };
    }
    const placer = str(req?.PlacerOrderNumberImagingServiceRequest);
    if (placer) {
      const issuerOid = str(arr(req?.OrderPlacerIdentifierSequence)[0]?.UniversalEntityID);
      out.placerOrder = issuerOid ? { value: placer, issuerOid } : { value: placer };
    }
    return out;
  });

  const content: ParsedKos['content'] = arr(ds.ContentSequence).map((c) => {
    const ref = arr(c.ReferencedSOPSequence)[0];
    const item: ParsedKos['content'][number] = { valueType: str(c.ValueType) ?? '' };
    const rel = str(c.RelationshipType);
    if (rel) item.relationship = rel;
    if (ref) {
      item.sopClassUid = str(ref.ReferencedSOPClassUID) ?? '';
      item.sopInstanceUid = str(ref.ReferencedSOPInstanceUID) ?? '';
    }
    const concept = str(arr(c.ConceptNameCodeSequence)[0]?.CodeValue);
    if (concept) item.concept = concept;
    const text = str(c.TextValue);
    if (text) item.text = text;
    return item;
  });

  const patient: ParsedKos['patient'] = {
    id: str(ds.PatientID) ?? '',
    otherIds: arr(ds.OtherPatientIDsSequence).map((o) => {
      const x: { id: string; issuer?: string; issuerOid?: string } = { id: str(o.PatientID) ?? '' };
      const iss = str(o.IssuerOfPatientID);
      if (iss) x.issuer = iss;
      const oid = str(arr(o.IssuerOfPatientIDQualifiersSequence)[0]?.UniversalEntityID);
      if (oid) x.issuerOid = oid;
      return x;
    }),
  };
  const set = <K extends keyof ParsedKos['patient']>(k: K, v: ParsedKos['patient'][K] | undefined) => {
    if (v !== undefined) patient[k] = v;
  };
  set('issuer', str(ds.IssuerOfPatientID));
  set('issuerOid', str(arr(ds.IssuerOfPatientIDQualifiersSequence)[0]?.UniversalEntityID));
  set('name', str(ds.PatientName));
  set('birthDate', str(ds.PatientBirthDate));
  set('sex', str(ds.PatientSex));

  const out: ParsedKos = {
    sopClassUid,
    sopInstanceUid: str(ds.SOPInstanceUID) ?? '',
    seriesInstanceUid: str(ds.SeriesInstanceUID) ?? '',
    studyInstanceUid: kosStudy,
    title,
    isRejectionNote: REJECTION_TITLE_CODES.has(title.code),
    patient,
    studies,
    content,
  };
  const modality = str(ds.Modality);
  if (modality) out.modality = modality;
  if (tpl) out.template = { mappingResource: str(tpl.MappingResource), templateId: str(tpl.TemplateIdentifier) };
  if (topAcc) out.accessionNumber = topAcc;
  const desc = content.find((c) => c.valueType === 'TEXT' && c.concept === '113012')?.text;
  if (desc) out.description = desc;
  const cd = str(ds.ContentDate);
  if (cd) out.contentDate = cd;
  const ct = str(ds.ContentTime);
  if (ct) out.contentTime = ct;
  return out;
}

/** Every instance a KOS references, flattened (study, series, class, instance). */
export function kosInstances(k: ParsedKos): KosInstance[] {
  return k.studies.flatMap((st) =>
    st.series.flatMap((se) => se.instances.map((i) => ({ studyUid: st.studyUid, seriesUid: se.seriesUid, ...i }))),
  );
}
