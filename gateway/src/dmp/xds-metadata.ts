// ebRIM SubmitObjectsRequest for ITI-41 (Provide and Register) from a publication record and its KOS,
// shaped field by field on the ANS example (JeuxDeDonnees/exemples/XDS/publication.xml) and DRIM-M.md §3:
// KOS DocumentEntry, CDA report DocumentEntry (optional), the DSG signature DocumentEntry, the
// SubmissionSet, HasMember / signs associations and RPLC to replaced entries. Pure: no I/O.
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import type { Code, PublicationRecord, StudyReference } from '../cda/types.js';
import { esc } from './dom.js';
import {
  ASSOCIATION,
  IDENT,
  KOS_CODES,
  NS,
  OBJECT_TYPE,
  REPORT_CODES,
  SCHEME,
  SIGNATURE_CODES,
  VALUE_SET_OID,
  type CodedValue,
} from './xds-constants.js';
import { cdaUniqueId, ce, cx, dtmOf, insPatientId, toDtm, xcn, xon } from './hl7-datatypes.js';
import { buildSubmissionSignature } from './submission-signature.js';

export class XdsBuildError extends Error {
  override name = 'XdsBuildError';
}

export interface KosInfo {
  sopInstanceUid: string;
  /** the KOS as DICOM Part 10 bytes (hash and size are computed from it) */
  part10: Buffer;
  /** HL7 TS of the KOS creation; defaults to the report's effectiveTime */
  creationTime?: string;
}

export interface SubmitterInfo {
  /** XDSSubmissionSet.sourceId: the box's OID */
  sourceId: string;
  submissionSetUid: string;
  /** uniqueId of the submission-set signature document */
  signatureUid: string;
  /** contentTypeCode of the submission set; defaults to the ANS example's */
  contentType?: CodedValue;
  /** authority OID for the study UID in referenceIdList; defaults to sourceId */
  studyUidAuthority?: string;
}

export interface SubmissionInput {
  record: PublicationRecord;
  kos: KosInfo;
  submitter: SubmitterInfo;
  /** publish the CDA report alongside the KOS (default true) */
  includeReport?: boolean;
  /** entryUUIDs of the entries this submission replaces (RPLC) */
  replaces?: { kos?: string; report?: string };
  signer: { certPem: string; keyPem: string };
  now?: Date;
}

export interface SubmissionDocument {
  /** symbolic id in the request (ExtrinsicObject/@id, Document/@id) */
  id: string;
  uniqueId: string;
  mimeType: string;
  content: Buffer;
}

export interface BuiltSubmission {
  /** lcm:SubmitObjectsRequest element (namespaced, no XML declaration) */
  submitObjectsRequest: string;
  documents: SubmissionDocument[];
  submissionSetUid: string;
  patientId: string;
  ids: { submissionSet: string; kos: string; report?: string; signature: string };
}

export const DEFAULT_CONTENT_TYPE: CodedValue = { code: '04', scheme: '1.2.250.1.213.2.2', display: 'Hospitalisation de jour' };

// ---- small XML writers (ebRIM default namespace is rim) ----

function slot(name: string, values: string[]): string {
  return `<Slot name="${esc(name)}"><ValueList>${values.map((v) => `<Value>${esc(v)}</Value>`).join('')}</ValueList></Slot>`;
}

function localized(tag: 'Name' | 'Description', value: string): string {
  return `<${tag}><LocalizedString charset="UTF8" value="${esc(value)}" xml:lang="FR"/></${tag}>`;
}

class IdGen {
  private n = 0;
  next(p: string): string {
    return `${p}${++this.n}`;
  }
}

function classification(ids: IdGen, scheme: string, object: string, c: CodedValue): string {
  return (
    `<Classification classificationScheme="${scheme}" classifiedObject="${esc(object)}" id="${ids.next('cla')}" nodeRepresentation="${esc(c.code)}">` +
    slot('codingScheme', [c.scheme]) +
    localized('Name', c.display) +
    `</Classification>`
  );
}

function externalId(ids: IdGen, scheme: string, object: string, value: string, label: string): string {
  return (
    `<ExternalIdentifier id="${ids.next('ei')}" identificationScheme="${scheme}" registryObject="${esc(object)}" value="${esc(value)}">` +
    localized('Name', label) +
    `</ExternalIdentifier>`
  );
}

function coded(c: Code, scheme?: string): CodedValue {
  return { code: c.code, scheme: scheme ?? c.codeSystem, display: c.displayName ?? c.code };
}

interface AuthorParts {
  person: string;
  institution?: string;
  specialty?: string;
}

function authorClassification(ids: IdGen, scheme: string, object: string, a: AuthorParts): string {
  return (
    `<Classification classificationScheme="${scheme}" classifiedObject="${esc(object)}" id="${ids.next('cla')}" nodeRepresentation="">` +
    slot('authorPerson', [a.person]) +
    (a.institution ? slot('authorInstitution', [a.institution]) : '') +
    (a.specialty ? slot('authorSpecialty', [a.specialty]) : '') +
    `</Classification>`
  );
}

function uniqueCodes(codes: CodedValue[]): CodedValue[] {
  const seen = new Set<string>();
  return codes.filter((c) => {
    const k = `${c.code}|${c.scheme}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** eventCodeList: act codes, modalities (JDV 618), anatomic regions (JDV 695). */
const CCAM = '1.2.250.1.213.2.5';

/**
 * eventCodeList: the act in CCAM (the DMP's value set; a CI-SIS report codes the act in LOINC with
 * the CCAM code as translation, so LOINC alone is left out), then modalities and anatomic regions.
 */
export function eventCodes(studies: StudyReference[]): CodedValue[] {
  const out: CodedValue[] = [];
  for (const s of studies) {
    const act = s.actCode?.codeSystem === CCAM ? s.actCode : s.ccamCode;
    if (act) out.push(coded(act));
    for (const m of s.modalities) out.push(coded(m, VALUE_SET_OID.modality));
    for (const r of s.anatomicRegions) out.push(coded(r, VALUE_SET_OID.anatomicRegion));
  }
  return uniqueCodes(out);
}

/** urn:ihe:iti:xds:2013:referenceIdList values: accession, study instance UID, order, per study. */
export function referenceIds(studies: StudyReference[], fallbackAuthority: string, studyUidAuthority: string): string[] {
  const out: string[] = [];
  for (const s of studies) {
    if (s.accessionNumber) out.push(cx(s.accessionNumber.value, s.accessionNumber.issuerOid ?? fallbackAuthority, 'urn:ihe:iti:xds:2013:accession'));
    out.push(cx(s.studyInstanceUid, studyUidAuthority, 'urn:ihe:iti:xds:2016:studyInstanceUID'));
    if (s.placerOrderNumber) out.push(cx(s.placerOrderNumber.value, s.placerOrderNumber.issuerOid ?? fallbackAuthority, 'urn:ihe:iti:xds:2013:order'));
  }
  return [...new Set(out)];
}

function sha1Hex(b: Buffer): string {
  return createHash('sha1').update(b).digest('hex');
}

/** Confidentiality codes: the report's, plus the DMP masks the HL7 flags ask for. */
export function confidentialityCodes(record: PublicationRecord): CodedValue[] {
  const out: CodedValue[] = [coded(record.confidentiality)];
  if (record.flags.masquePs) out.push(SIGNATURE_CODES.masquePs);
  if (record.flags.invisiblePatient) out.push(SIGNATURE_CODES.invisiblePatient);
  return out;
}

interface EntrySpec {
  id: string;
  uniqueId: string;
  mimeType: string;
  content: Buffer;
  title: string;
  description?: string;
  creationTime: string;
  languageCode: string;
  classCode: CodedValue;
  typeCode: CodedValue;
  formatCode: CodedValue;
  confidentiality: CodedValue[];
  events: CodedValue[];
  refIds: string[];
  sourcePatientId: string;
  sourcePatientInfo?: string[];
  serviceStart?: string;
  serviceStop?: string;
}

/** Build the ITI-41 metadata and documents. Throws XdsBuildError when the record lacks required data. */
export function buildSubmission(input: SubmissionInput): BuiltSubmission {
  const { record, kos, submitter } = input;
  const now = input.now ?? new Date();
  const includeReport = input.includeReport ?? true;
  if (!record.studies.length) throw new XdsBuildError('the record names no study');
  if (!record.healthcareFacilityType) throw new XdsBuildError('healthcareFacilityTypeCode is missing from the report');
  if (!record.practiceSetting) throw new XdsBuildError('practiceSettingCode is missing from the report');
  if (!record.author.id.extension) throw new XdsBuildError('the author has no RPPS identifier');
  const ids = new IdGen();
  const patientId = insPatientId(record.patient);
  const submissionTime = dtmOf(now);
  const p = record.patient;
  const sourcePatientId = p.ipp ? cx(p.ipp.value, p.ipp.oid, 'PI') : cx(p.ins.value, p.ins.oid, 'PI');
  const sourcePatientInfo = [
    `PID-5|${p.birthName}^${p.givenNames[0] ?? ''}^${p.givenNames.slice(1).join(' ')}^^^^L`,
    `PID-7|${p.birthDate}`,
    `PID-8|${p.sex}`,
  ];
  const author: AuthorParts = {
    person: xcn(record.author),
    institution: record.author.organization ? xon(record.author.organization) : undefined,
    specialty: record.author.role ? ce(record.author.role) : undefined,
  };
  const legal = record.legalAuthenticator ? xcn(record.legalAuthenticator) : undefined;
  const hft = coded(record.healthcareFacilityType);
  const ps = coded(record.practiceSetting);
  const starts = record.studies.map((s) => s.startTime).filter((t): t is string => !!t).map(toDtm).sort();
  const stops = record.studies.map((s) => s.endTime).filter((t): t is string => !!t).map(toDtm).sort();
  const refIds = referenceIds(record.studies, submitter.sourceId, submitter.studyUidAuthority ?? submitter.sourceId);
  const events = eventCodes(record.studies);
  const conf = confidentialityCodes(record);

  // what the KOS and the report say alike: same patient, same exams, same confidentiality
  const shared = {
    confidentiality: conf,
    events,
    refIds,
    sourcePatientId,
    sourcePatientInfo,
    serviceStart: starts[0],
    serviceStop: stops[stops.length - 1],
  } satisfies Partial<EntrySpec>;

  const entries: EntrySpec[] = [];
  const kosEntry: EntrySpec = {
    id: 'DocumentKOS',
    uniqueId: kos.sopInstanceUid,
    mimeType: KOS_CODES.mimeType,
    content: kos.part10,
    title: "Reference d'Objets d'un Examen d'Imagerie",
    description: 'KOS',
    creationTime: toDtm(kos.creationTime ?? record.effectiveTime),
    languageCode: 'fr-FR',
    classCode: KOS_CODES.classCode,
    typeCode: KOS_CODES.typeCode,
    formatCode: KOS_CODES.formatCode,
    ...shared,
  };
  entries.push(kosEntry);
  if (includeReport) {
    entries.push({
      id: 'DocumentCR',
      uniqueId: cdaUniqueId(record.documentId),
      mimeType: REPORT_CODES.mimeType,
      content: record.cda,
      title: record.title ?? record.code.displayName ?? "CR d'imagerie médicale",
      creationTime: toDtm(record.effectiveTime),
      languageCode: record.languageCode || 'fr-FR',
      classCode: REPORT_CODES.classCode,
      typeCode: coded(record.code),
      formatCode: REPORT_CODES.formatCode,
      ...shared,
    });
  }
  const signatureContent = buildSubmissionSignature({
    signatureUid: submitter.signatureUid,
    documents: entries.map((e) => ({ uniqueId: e.uniqueId, content: e.content })),
    certPem: input.signer.certPem,
    keyPem: input.signer.keyPem,
    signingTime: now,
  });
  entries.push({
    id: 'Signature01',
    uniqueId: submitter.signatureUid,
    mimeType: SIGNATURE_CODES.mimeType,
    content: signatureContent,
    title: 'Source',
    description: '',
    creationTime: submissionTime,
    languageCode: SIGNATURE_CODES.languageCode,
    classCode: SIGNATURE_CODES.classCode,
    typeCode: SIGNATURE_CODES.typeCode,
    formatCode: SIGNATURE_CODES.formatCode,
    // as in the ANS example: the signature is never shown to professionals or the patient
    confidentiality: uniqueCodes([coded(record.confidentiality), SIGNATURE_CODES.masquePs, SIGNATURE_CODES.invisiblePatient]),
    events: [SIGNATURE_CODES.eventCode],
    refIds,
    sourcePatientId: patientId,
    serviceStart: submissionTime,
    serviceStop: submissionTime,
  });

  const ssId = 'SubmissionSet01';
  const contentType = submitter.contentType ?? DEFAULT_CONTENT_TYPE;
  let xml = `<lcm:SubmitObjectsRequest xmlns:lcm="${NS.lcm}" xmlns:rim="${NS.rim}" xmlns="${NS.rim}"><RegistryObjectList>`;
  xml +=
    `<RegistryPackage id="${ssId}" objectType="${OBJECT_TYPE.registryPackage}">` +
    slot('submissionTime', [submissionTime]) +
    localized('Name', record.title ?? "Publication d'un examen d'imagerie") +
    authorClassification(ids, SCHEME.ssAuthor, ssId, author) +
    classification(ids, SCHEME.ssContentType, ssId, contentType) +
    `<Classification classificationNode="${SCHEME.submissionSetNode}" classifiedObject="${ssId}" id="${ids.next('cla')}"/>` +
    externalId(ids, IDENT.ssPatientId, ssId, patientId, 'XDSSubmissionSet.patientId') +
    externalId(ids, IDENT.ssSourceId, ssId, submitter.sourceId, 'XDSSubmissionSet.sourceId') +
    externalId(ids, IDENT.ssUniqueId, ssId, submitter.submissionSetUid, 'XDSSubmissionSet.uniqueId') +
    `</RegistryPackage>`;

  for (const e of entries) {
    xml += `<ExtrinsicObject id="${e.id}" mimeType="${esc(e.mimeType)}" objectType="${OBJECT_TYPE.stableDocumentEntry}">`;
    xml += slot('creationTime', [e.creationTime]);
    xml += slot('submissionTime', [submissionTime]);
    xml += slot('languageCode', [e.languageCode]);
    if (legal) xml += slot('legalAuthenticator', [legal]);
    if (e.serviceStart) xml += slot('serviceStartTime', [e.serviceStart]);
    if (e.serviceStop) xml += slot('serviceStopTime', [e.serviceStop]);
    xml += slot('sourcePatientId', [e.sourcePatientId]);
    xml += slot('hash', [sha1Hex(e.content)]);
    xml += slot('size', [String(e.content.length)]);
    if (e.sourcePatientInfo) xml += slot('sourcePatientInfo', e.sourcePatientInfo);
    xml += slot('urn:ihe:iti:xds:2013:referenceIdList', e.refIds);
    xml += localized('Name', e.title);
    if (e.description !== undefined) xml += localized('Description', e.description);
    xml += authorClassification(ids, SCHEME.deAuthor, e.id, author);
    xml += classification(ids, SCHEME.classCode, e.id, e.classCode);
    xml += classification(ids, SCHEME.typeCode, e.id, e.typeCode);
    for (const c of e.confidentiality) xml += classification(ids, SCHEME.confidentiality, e.id, c);
    xml += classification(ids, SCHEME.formatCode, e.id, e.formatCode);
    xml += classification(ids, SCHEME.healthcareFacilityType, e.id, hft);
    xml += classification(ids, SCHEME.practiceSetting, e.id, ps);
    for (const c of e.events) xml += classification(ids, SCHEME.eventCode, e.id, c);
    xml += externalId(ids, IDENT.dePatientId, e.id, patientId, 'XDSDocumentEntry.patientId');
    xml += externalId(ids, IDENT.deUniqueId, e.id, e.uniqueId, 'XDSDocumentEntry.uniqueId');
    xml += `</ExtrinsicObject>`;
  }

  const assoc = (type: string, source: string, target: string, slots = ''): string =>
    `<Association associationType="${type}" id="${ids.next('as')}" objectType="${OBJECT_TYPE.association}" sourceObject="${esc(source)}" targetObject="${esc(target)}">${slots}</Association>`;
  const original = slot('SubmissionSetStatus', ['Original']);
  for (const e of entries) xml += assoc(ASSOCIATION.hasMember, ssId, e.id, original);
  xml += assoc(ASSOCIATION.signs, 'Signature01', ssId, original);
  if (input.replaces?.kos) xml += assoc(ASSOCIATION.replace, 'DocumentKOS', input.replaces.kos);
  if (input.replaces?.report && includeReport) xml += assoc(ASSOCIATION.replace, 'DocumentCR', input.replaces.report);
  xml += `</RegistryObjectList></lcm:SubmitObjectsRequest>`;

  return {
    submitObjectsRequest: xml,
    documents: entries.map((e) => ({ id: e.id, uniqueId: e.uniqueId, mimeType: e.mimeType, content: e.content })),
    submissionSetUid: submitter.submissionSetUid,
    patientId,
    ids: { submissionSet: ssId, kos: 'DocumentKOS', report: includeReport ? 'DocumentCR' : undefined, signature: 'Signature01' },
  };
}

export interface StatusUpdateInput {
  entryUuid: string;
  originalStatus: string;   // status URN
  newStatus: string;        // status URN
  patientId: string;
  sourceId: string;
  submissionSetUid: string;
  author: { person: string; institution?: string };
  contentType?: CodedValue;
  now?: Date;
}

/** ITI-57 Update Document Set carrying one UpdateAvailabilityStatus association. */
export function buildStatusUpdate(o: StatusUpdateInput): string {
  const ids = new IdGen();
  const ssId = 'SubmissionSet01';
  return (
    `<lcm:SubmitObjectsRequest xmlns:lcm="${NS.lcm}" xmlns:rim="${NS.rim}" xmlns="${NS.rim}"><RegistryObjectList>` +
    `<RegistryPackage id="${ssId}" objectType="${OBJECT_TYPE.registryPackage}">` +
    slot('submissionTime', [dtmOf(o.now ?? new Date())]) +
    authorClassification(ids, SCHEME.ssAuthor, ssId, o.author) +
    classification(ids, SCHEME.ssContentType, ssId, o.contentType ?? DEFAULT_CONTENT_TYPE) +
    `<Classification classificationNode="${SCHEME.submissionSetNode}" classifiedObject="${ssId}" id="${ids.next('cla')}"/>` +
    externalId(ids, IDENT.ssPatientId, ssId, o.patientId, 'XDSSubmissionSet.patientId') +
    externalId(ids, IDENT.ssSourceId, ssId, o.sourceId, 'XDSSubmissionSet.sourceId') +
    externalId(ids, IDENT.ssUniqueId, ssId, o.submissionSetUid, 'XDSSubmissionSet.uniqueId') +
    `</RegistryPackage>` +
    `<Association associationType="${ASSOCIATION.updateAvailabilityStatus}" id="${ids.next('as')}" objectType="${OBJECT_TYPE.association}" sourceObject="${ssId}" targetObject="${esc(o.entryUuid)}">` +
    slot('OriginalStatus', [o.originalStatus]) +
    slot('NewStatus', [o.newStatus]) +
    `</Association></RegistryObjectList></lcm:SubmitObjectsRequest>`
  );
}
