// ITI-41 metadata checks, as strict as the ANS validators are for what a DRIMbox sends: required slots,
// classifications and identifiers, value sets, INS patient ids, IMG-KOS specifics, hash/size, document
// presence, the DSG submission signature, associations. Each failure is an XDS RegistryError.
import { createHash, X509Certificate } from 'node:crypto';
import type { Element } from '../../gateway/src/dmp/dom.js';
import { attr, elements } from '../../gateway/src/dmp/dom.js';
import { ASSOCIATION, ERROR_SEVERITY, IDENT, INS_OIDS, KOS_CODES, OBJECT_TYPE, SCHEME, SIGNATURE_CODES } from '../../gateway/src/dmp/xds-constants.js';
import { classificationsOf, codeOf, externalIdOf, slotValues } from '../../gateway/src/dmp/xds-query.js';
import type { RegistryErrorDetail } from '../../gateway/src/dmp/errors.js';
import { verifySubmissionSignature, sha256Base64 } from '../../gateway/src/dmp/submission-signature.js';
import { VALUE_SETS } from './value-sets.js';

export interface Submission {
  submissionSet?: Element;
  entries: Element[];
  associations: Element[];
  documents: Map<string, Buffer>;
}

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const DTM = /^\d{4}(\d{2}){0,5}$/;
export const INS_PATIENT_ID = new RegExp(`^\\d{13}\\d{2}\\^\\^\\^&(${INS_OIDS.map((o) => o.replace(/\./g, '\\.')).join('|')})&ISO\\^NH$`);

export class Errors {
  readonly list: RegistryErrorDetail[] = [];
  add(errorCode: string, codeContext: string, location?: string): void {
    this.list.push({ errorCode, codeContext, severity: ERROR_SEVERITY, location });
  }
}

function checkCode(err: Errors, e: Element, id: string, scheme: string, set: keyof typeof VALUE_SETS, label: string, required: 'one' | 'many'): void {
  const cs = classificationsOf(e, scheme);
  if (!cs.length) return err.add('XDSRegistryMetadataError', `${label} is missing`, id);
  if (required === 'one' && cs.length > 1) err.add('XDSRegistryMetadataError', `${label} must be single`, id);
  for (const c of cs) {
    const { code, scheme: cs2 } = codeOf(c);
    if (!cs2) err.add('XDSRegistryMetadataError', `${label} ${code} has no codingScheme`, id);
    else if (!VALUE_SETS[set](code, cs2)) err.add('XDSRegistryMetadataError', `${label} ${code} (${cs2}) is not in the value set`, id);
  }
}

function checkAuthor(err: Errors, e: Element, id: string, scheme: string): void {
  const a = classificationsOf(e, scheme)[0];
  const person = a ? slotValues(a, 'authorPerson')[0] : undefined;
  if (!person) return err.add('XDSRegistryMetadataError', 'author (authorPerson) is missing', id);
  if (!/^\d+\^[^^]*\^[^^]*\^.*&1\.2\.250\.1\.71\.4\.2\.1&ISO\^D\^\^\^IDNPS$/.test(person)) {
    err.add('XDSRegistryMetadataError', `authorPerson is not an RPPS XCN: ${person}`, id);
  }
}

/** Check one submission; `isKnownUniqueId` looks the registry up for duplicates. */
export function validateSubmission(
  s: Submission,
  opts: { trustAnchors: string[]; isKnownUniqueId: (uid: string) => boolean; vihfPatientId?: string },
): { errors: RegistryErrorDetail[]; patientId?: string } {
  const err = new Errors();
  const ss = s.submissionSet;
  if (!ss) {
    err.add('XDSRegistryMetadataError', 'no SubmissionSet RegistryPackage');
    return { errors: err.list };
  }
  const ssId = attr(ss, 'id') ?? '';
  const patientId = externalIdOf(ss, IDENT.ssPatientId);
  if (!patientId) err.add('XDSRegistryMetadataError', 'XDSSubmissionSet.patientId is missing', ssId);
  else if (!INS_PATIENT_ID.test(patientId)) err.add('XDSUnknownPatientId', `patient id ${patientId} is not an INS (NIR/NIA) in XDS form`, ssId);
  if (patientId && opts.vihfPatientId && opts.vihfPatientId !== patientId) {
    err.add('XDSPatientIdDoesNotMatch', 'the VIHF resource-id is not the submission patient', ssId);
  }
  const sourceId = externalIdOf(ss, IDENT.ssSourceId);
  if (!sourceId || !OID.test(sourceId)) err.add('XDSRegistryMetadataError', 'XDSSubmissionSet.sourceId missing or not an OID', ssId);
  const ssUid = externalIdOf(ss, IDENT.ssUniqueId);
  if (!ssUid || !OID.test(ssUid)) err.add('XDSRegistryMetadataError', 'XDSSubmissionSet.uniqueId missing or not an OID', ssId);
  else if (opts.isKnownUniqueId(ssUid)) err.add('XDSDuplicateUniqueIdInRegistry', `submission set uniqueId ${ssUid} already registered`, ssId);
  if (!DTM.test(slotValues(ss, 'submissionTime')[0] ?? '')) err.add('XDSRegistryMetadataError', 'submissionTime missing or not DTM', ssId);
  checkAuthor(err, ss, ssId, SCHEME.ssAuthor);
  checkCode(err, ss, ssId, SCHEME.ssContentType, 'contentType', 'contentTypeCode', 'one');

  const seenUids = new Set<string>();
  const ids = new Set<string>();
  for (const e of s.entries) {
    const id = attr(e, 'id') ?? '';
    ids.add(id);
    if (attr(e, 'objectType') !== OBJECT_TYPE.stableDocumentEntry) err.add('XDSRegistryMetadataError', 'objectType is not a stable DocumentEntry', id);
    const mime = attr(e, 'mimeType');
    if (!mime) err.add('XDSRegistryMetadataError', 'mimeType is missing', id);
    const uid = externalIdOf(e, IDENT.deUniqueId);
    if (!uid) err.add('XDSRegistryMetadataError', 'XDSDocumentEntry.uniqueId is missing', id);
    else if (seenUids.has(uid) || opts.isKnownUniqueId(uid)) err.add('XDSDuplicateUniqueIdInRegistry', `document uniqueId ${uid} already registered`, id);
    else seenUids.add(uid);
    const pid = externalIdOf(e, IDENT.dePatientId);
    if (!pid) err.add('XDSRegistryMetadataError', 'XDSDocumentEntry.patientId is missing', id);
    else if (pid !== patientId) err.add('XDSPatientIdDoesNotMatch', 'document patientId differs from the submission set', id);
    if (!DTM.test(slotValues(e, 'creationTime')[0] ?? '')) err.add('XDSRegistryMetadataError', 'creationTime missing or not DTM', id);
    if (!slotValues(e, 'languageCode')[0]) err.add('XDSRegistryMetadataError', 'languageCode is missing', id);
    if (!slotValues(e, 'sourcePatientId')[0]) err.add('XDSRegistryMetadataError', 'sourcePatientId is missing', id);
    checkAuthor(err, e, id, SCHEME.deAuthor);
    checkCode(err, e, id, SCHEME.classCode, 'classCode', 'classCode', 'one');
    checkCode(err, e, id, SCHEME.typeCode, 'typeCode', 'typeCode', 'one');
    checkCode(err, e, id, SCHEME.formatCode, 'formatCode', 'formatCode', 'one');
    checkCode(err, e, id, SCHEME.confidentiality, 'confidentiality', 'confidentialityCode', 'many');
    checkCode(err, e, id, SCHEME.healthcareFacilityType, 'healthcareFacilityType', 'healthcareFacilityTypeCode', 'one');
    checkCode(err, e, id, SCHEME.practiceSetting, 'practiceSetting', 'practiceSettingCode', 'one');
    if (classificationsOf(e, SCHEME.eventCode).length) checkCode(err, e, id, SCHEME.eventCode, 'eventCode', 'eventCodeList', 'many');

    const content = s.documents.get(id);
    if (!content) err.add('XDSMissingDocument', `no Document for ${id}`, id);
    else {
      const size = slotValues(e, 'size')[0];
      const hash = slotValues(e, 'hash')[0];
      if (size !== undefined && Number(size) !== content.length) err.add('XDSRepositoryMetadataError', `size ${size} ≠ ${content.length}`, id);
      if (hash !== undefined && hash.toLowerCase() !== createHash('sha1').update(content).digest('hex')) err.add('XDSRepositoryMetadataError', 'hash does not match the document', id);
    }

    const type = classificationsOf(e, SCHEME.typeCode).map(codeOf)[0];
    if (type?.code === KOS_CODES.typeCode.code && type.scheme === KOS_CODES.typeCode.scheme) {
      if (mime !== KOS_CODES.mimeType) err.add('XDSRegistryMetadataError', `IMG-KOS must be ${KOS_CODES.mimeType}, not ${mime}`, id);
      const fmt = classificationsOf(e, SCHEME.formatCode).map(codeOf)[0];
      if (fmt?.code !== KOS_CODES.formatCode.code || fmt.scheme !== KOS_CODES.formatCode.scheme) err.add('XDSRegistryMetadataError', 'IMG-KOS formatCode must be the KOS SOP class', id);
      const cls = classificationsOf(e, SCHEME.classCode).map(codeOf)[0];
      if (cls?.code !== KOS_CODES.classCode.code) err.add('XDSRegistryMetadataError', 'IMG-KOS classCode must be 31', id);
      const refs = slotValues(e, 'urn:ihe:iti:xds:2013:referenceIdList');
      if (!refs.length) err.add('XDSRegistryMetadataError', 'IMG-KOS requires urn:ihe:iti:xds:2013:referenceIdList', id);
      else {
        if (!refs.some((r) => /\^urn:ihe:iti:xds:2016:studyInstanceUID$/.test(r))) err.add('XDSRegistryMetadataError', 'referenceIdList lacks the studyInstanceUID', id);
        if (!refs.some((r) => /\^urn:ihe:iti:xds:2013:accession$/.test(r))) err.add('XDSRegistryMetadataError', 'referenceIdList lacks the accession number', id);
        for (const r of refs) if (!/^[^^]+\^\^\^&[0-9.]+&ISO\^urn:ihe:iti:xds:201[36]:\w+$/.test(r)) err.add('XDSRegistryMetadataError', `malformed referenceId ${r}`, id);
      }
      if (!classificationsOf(e, SCHEME.eventCode).some((c) => codeOf(c).scheme === '1.2.250.1.213.1.1.5.618')) {
        err.add('XDSRegistryMetadataError', 'IMG-KOS eventCodeList needs the modality (1.2.250.1.213.1.1.5.618)', id);
      }
    }
  }
  for (const docId of s.documents.keys()) if (!ids.has(docId)) err.add('XDSMissingDocumentMetadata', `Document ${docId} has no DocumentEntry`, docId);

  // associations
  const members = new Set<string>();
  let signature: Element | undefined;
  for (const a of s.associations) {
    const type = attr(a, 'associationType');
    const src = attr(a, 'sourceObject') ?? '';
    const tgt = attr(a, 'targetObject') ?? '';
    if (type === ASSOCIATION.hasMember) {
      if (src !== ssId) err.add('XDSRegistryMetadataError', 'HasMember must start at the submission set', attr(a, 'id'));
      members.add(tgt);
    } else if (type === ASSOCIATION.signs) {
      if (tgt !== ssId) err.add('XDSRegistryMetadataError', 'signs must target the submission set', attr(a, 'id'));
      signature = s.entries.find((e) => attr(e, 'id') === src);
      if (!signature) err.add('XDSRegistryMetadataError', 'signs source is not a document of this submission', attr(a, 'id'));
    } else if (type !== ASSOCIATION.replace) {
      err.add('XDSRegistryMetadataError', `unsupported association ${type}`, attr(a, 'id'));
    }
  }
  for (const id of ids) if (!members.has(id)) err.add('XDSRegistryMetadataError', `document ${id} is not a member of the submission set`, id);

  // the DSG submission signature
  if (!signature) err.add('XDSRegistryMetadataError', 'the submission set signature (signs association) is missing', ssId);
  else {
    const sid = attr(signature, 'id') ?? '';
    const sc = classificationsOf(signature, SCHEME.classCode).map(codeOf)[0];
    if (sc?.code !== SIGNATURE_CODES.classCode.code) err.add('XDSRegistryMetadataError', 'the signature document classCode is not Digital Signature', sid);
    const content = s.documents.get(sid);
    if (content) {
      try {
        const v = verifySubmissionSignature(content);
        if (!chainsTo(v.signerCertPem, opts.trustAnchors)) err.add('XDSRegistryMetadataError', 'the submission signature certificate is not trusted', sid);
        for (const e of s.entries) {
          const id = attr(e, 'id') ?? '';
          if (id === sid) continue;
          const uid = externalIdOf(e, IDENT.deUniqueId) ?? '';
          const doc = s.documents.get(id);
          const listed = v.manifest.get(uid);
          if (!listed) err.add('XDSRegistryMetadataError', `the submission signature does not cover ${uid}`, id);
          else if (doc && listed !== sha256Base64(doc)) err.add('XDSRegistryMetadataError', `the submission signature digest of ${uid} does not match`, id);
        }
      } catch (e) {
        err.add('XDSRegistryMetadataError', `invalid submission signature: ${(e as Error).message}`, sid);
      }
    }
  }
  return { errors: err.list, patientId };
}

export function chainsTo(certPem: string, anchors: string[], now = new Date()): boolean {
  try {
    const cert = new X509Certificate(certPem);
    if (new Date(cert.validFrom) > now || new Date(cert.validTo) < now) return false;
    return anchors.some((pem) => {
      const ca = new X509Certificate(pem);
      return cert.fingerprint256 === ca.fingerprint256 || (cert.checkIssued(ca) && cert.verify(ca.publicKey));
    });
  } catch {
    return false;
  }
}

export { elements };
