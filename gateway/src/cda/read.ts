// CDA R2 header → PublicationRecord (CI-SIS IMG-CR-IMG model), and the report body for display.
// Namespace-aware XPath over @xmldom/xmldom; every required item missing gives a typed CdaError.
import { DOMParser } from '@xmldom/xmldom';
import { dtdRefusal } from '../xml/dtd.js';
import xpath from 'xpath';
import type { Code, InstanceIdentifier, Patient, Professional, PublicationRecord, StudyReference } from './types.js';

export type CdaErrorCode = 'not-xml' | 'not-cda' | 'missing-field' | 'bad-value';

export class CdaError extends Error {
  constructor(readonly code: CdaErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'CdaError';
  }
}

export const INS_OIDS = {
  NIR: '1.2.250.1.213.1.4.8',
  NIA: '1.2.250.1.213.1.4.9',
  TEST_NIR: '1.2.250.1.213.1.4.10',
} as const;
const INS_OID_SET = new Set<string>(Object.values(INS_OIDS));
const RPPS_OID = '1.2.250.1.71.4.2.1';
const DCM_SCHEME = '1.2.840.10008.2.16.4';
const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;

const select = xpath.useNamespaces({ h: 'urn:hl7-org:v3', ps3: 'urn:dicom-org:ps3-20', xsi: 'http://www.w3.org/2001/XMLSchema-instance' });

type N = Node;
function nodes(expr: string, ctx: N): Element[] {
  return select(expr, ctx) as unknown as Element[];
}
function node(expr: string, ctx: N): Element | undefined {
  return nodes(expr, ctx)[0];
}
function attr(el: Element | undefined, name: string): string | undefined {
  const v = el?.getAttribute(name);
  return v === null || v === undefined || v === '' ? undefined : v;
}
function text(el: Element | undefined): string | undefined {
  const t = el?.textContent?.trim();
  return t ? t : undefined;
}
function ii(el: Element | undefined): InstanceIdentifier | undefined {
  const root = attr(el, 'root');
  if (!root) return undefined;
  const extension = attr(el, 'extension');
  return extension ? { root, extension } : { root };
}
function code(el: Element | undefined): Code | undefined {
  const c = attr(el, 'code');
  const codeSystem = attr(el, 'codeSystem');
  if (!c || !codeSystem) return undefined;
  const out: Code = { code: c, codeSystem };
  const dn = attr(el, 'displayName');
  if (dn) out.displayName = dn;
  const csn = attr(el, 'codeSystemName');
  if (csn) out.codeSystemName = csn;
  return out;
}

/** Parse XML text into a DOM, throwing CdaError('not-xml') on any well-formedness error. */
export function parseXml(xml: string): Document {
  const refused = dtdRefusal(xml);
  if (refused) throw new CdaError('not-xml', `The report is refused: ${refused}.`);
  let problem: string | undefined;
  let doc: Document | undefined;
  try {
    doc = new DOMParser({
      onError: (level: string, msg: string) => {
        if (level !== 'warning' && !problem) problem = msg;
      },
    }).parseFromString(xml, 'text/xml') as unknown as Document;
  } catch (e) {
    problem = problem ?? (e as Error).message;
  }
  if (problem || !doc || !doc.documentElement) {
    throw new CdaError('not-xml', `The report is not well-formed XML (${(problem ?? 'no root element').split('\n')[0].trim()}).`);
  }
  return doc;
}

function toText(cda: Buffer | string): string {
  return typeof cda === 'string' ? cda : cda.toString('utf8').replace(/^\uFEFF/, '');
}

function clinicalDocument(cda: Buffer | string): Element {
  const doc = parseXml(toText(cda));
  const root = doc.documentElement as unknown as Element;
  if (root.localName !== 'ClinicalDocument' || root.namespaceURI !== 'urn:hl7-org:v3') {
    throw new CdaError('not-cda', `The report is XML but not a CDA R2 document (root element <${root.nodeName}>, expected ClinicalDocument in urn:hl7-org:v3).`);
  }
  return root;
}

function required<T>(v: T | undefined, field: string, what: string): T {
  if (v === undefined) throw new CdaError('missing-field', `The report has no ${what} (${field}).`, field);
  return v;
}

function readPatient(doc: Element): Patient {
  const role = required(node('h:recordTarget/h:patientRole', doc), 'recordTarget/patientRole', 'patient');
  const ids = nodes('h:id', role).map(ii).filter((x): x is InstanceIdentifier => !!x);
  const ins = ids.find((i) => INS_OID_SET.has(i.root) && i.extension);
  if (!ins) {
    throw new CdaError('missing-field', 'The report has no patient INS (recordTarget/patientRole/id with the INS-NIR/NIA OID).', 'recordTarget/patientRole/id');
  }
  const other = ids.find((i) => !INS_OID_SET.has(i.root) && i.extension);
  const p = required(node('h:patient', role), 'patientRole/patient', 'patient identity');
  const name = node('h:name', p);
  const families = name ? nodes('h:family', name) : [];
  const givens = name ? nodes('h:given', name) : [];
  const birthFamily = families.find((f) => attr(f, 'qualifier') === 'BR') ?? families.find((f) => !attr(f, 'qualifier')) ?? families[0];
  const usedFamily = families.find((f) => ['CL', 'SP'].includes(attr(f, 'qualifier') ?? ''));
  const birthGivens = givens.filter((g) => !['CL', 'SP', 'CA'].includes(attr(g, 'qualifier') ?? '')).map(text).filter((x): x is string => !!x);
  // CI-SIS: the birth given names may be one element "A B C" or several elements; keep them as given.
  const sexCode = attr(node('h:administrativeGenderCode', p), 'code');
  const sex: Patient['sex'] = sexCode === 'M' ? 'M' : sexCode === 'F' ? 'F' : 'U';
  const birth = attr(node('h:birthTime', p), 'value');
  const out: Patient = {
    ins: { value: ins.extension!, oid: ins.root },
    birthName: required(text(birthFamily), 'patient/name/family', 'patient birth name'),
    givenNames: birthGivens,
    birthDate: required(birth, 'patient/birthTime', 'patient birth date').slice(0, 8),
    sex,
  };
  if (other) out.ipp = { value: other.extension!, oid: other.root };
  const used = text(usedFamily);
  if (used) out.usedName = used;
  const county = text(node('h:birthplace/h:place/h:addr/h:county', p));
  if (county) out.birthPlace = county;
  return out;
}

function readProfessional(entity: Element | undefined, time: string | undefined): Professional | undefined {
  if (!entity) return undefined;
  const ids = nodes('h:id', entity).map(ii).filter((x): x is InstanceIdentifier => !!x);
  const id = ids.find((i) => i.root === RPPS_OID) ?? ids[0];
  if (!id) return undefined;
  const out: Professional = { id };
  const person = node('h:assignedPerson/h:name', entity);
  const family = text(person && node('h:family', person));
  const given = text(person && node('h:given', person));
  const prefix = text(person && node('h:prefix', person));
  if (family) out.family = family;
  if (given) out.given = given;
  if (prefix) out.prefix = prefix;
  const role = code(node('h:code', entity));
  if (role) out.role = role;
  const org = node('h:representedOrganization', entity);
  if (org) {
    const o: { id?: InstanceIdentifier; name?: string } = {};
    const oid = ii(node('h:id', org));
    if (oid) o.id = oid;
    const oname = text(node('h:name', org));
    if (oname) o.name = oname;
    out.organization = o;
  }
  if (time) out.time = time;
  return out;
}

function isModality(tr: Element): boolean {
  const q = attr(node('h:qualifier/h:name', tr), 'code');
  return q === '121139' || (attr(tr, 'codeSystem') === DCM_SCHEME && q !== '39111-0');
}
function isAnatomic(tr: Element): boolean {
  const q = attr(node('h:qualifier/h:name', tr), 'code');
  return q === '39111-0' || (q === undefined && attr(tr, 'codeSystem') === '2.16.840.1.113883.6.96');
}

function studyUidOf(se: Element): string | undefined {
  for (const idEl of nodes('h:id', se)) {
    const root = attr(idEl, 'root');
    const ext = attr(idEl, 'extension');
    // DICOM PS3.20: the Study Instance UID is the root, no extension. Accept root=OID + extension=UID too.
    if (root && !ext && UID_RE.test(root)) return root;
    if (ext && UID_RE.test(ext)) return ext;
  }
  return undefined;
}

function readStudies(doc: Element): StudyReference[] {
  const orders = nodes('h:inFulfillmentOf/h:order', doc);
  const events = nodes('h:documentationOf/h:serviceEvent', doc).filter((se) => nodes('h:id', se).length > 0);
  const studies: StudyReference[] = [];
  events.forEach((se, i) => {
    const uid = studyUidOf(se);
    if (!uid) return;
    const order = orders.length === events.length ? orders[i] : orders[0];
    const s: StudyReference = { studyInstanceUid: uid, modalities: [], anatomicRegions: [] };
    if (order) {
      const placer = ii(node('h:id', order));
      if (placer?.extension) s.placerOrderNumber = { value: placer.extension, issuerOid: placer.root };
      const acc = ii(node('ps3:accessionNumber', order));
      if (acc?.extension) s.accessionNumber = { value: acc.extension, issuerOid: acc.root };
    }
    // Accession number may also sit on the serviceEvent itself (PS3.20 puts it under order; some RIS differ).
    const acc2 = ii(node('h:id[@root and @extension and @assigningAuthorityName="accession"]', se));
    if (!s.accessionNumber && acc2?.extension) s.accessionNumber = { value: acc2.extension, issuerOid: acc2.root };
    const codeEl = node('h:code', se);
    const act = code(codeEl);
    if (act) s.actCode = act;
    if (codeEl) {
      for (const tr of nodes('h:translation', codeEl)) {
        const c = code(tr);
        if (!c) continue;
        if (isModality(tr)) s.modalities.push(c);
        else if (isAnatomic(tr)) s.anatomicRegions.push(c);
        else if (c.codeSystem === '1.2.250.1.213.2.5' && !s.ccamCode) s.ccamCode = c;
      }
    }
    const low = attr(node('h:effectiveTime/h:low', se), 'value') ?? attr(node('h:effectiveTime', se), 'value');
    if (low) s.startTime = low;
    studies.push(s);
  });
  return studies;
}

export interface ReadCdaOptions {
  /** HL7 flags; default: published to the DMP, visible to everyone */
  flags?: PublicationRecord['flags'];
}

/** Read a CDA R2 imaging report header. Throws CdaError (not-xml, not-cda, missing-field, bad-value). */
export function readCda(cda: Buffer | string, opts: ReadCdaOptions = {}): PublicationRecord {
  const doc = clinicalDocument(cda);
  const documentId = required(ii(node('h:id', doc)), 'ClinicalDocument/id', 'document id');
  const setId = required(ii(node('h:setId', doc)), 'ClinicalDocument/setId', 'setId');
  const versionText = required(attr(node('h:versionNumber', doc), 'value'), 'ClinicalDocument/versionNumber', 'version number');
  const versionNumber = Number(versionText);
  if (!Number.isInteger(versionNumber) || versionNumber < 1) {
    throw new CdaError('bad-value', `The report version number "${versionText}" is not a positive integer.`, 'ClinicalDocument/versionNumber');
  }
  const docCode = required(code(node('h:code', doc)), 'ClinicalDocument/code', 'document type code');
  const confidentiality = required(code(node('h:confidentialityCode', doc)), 'ClinicalDocument/confidentialityCode', 'confidentiality code');
  const effectiveTime = required(attr(node('h:effectiveTime', doc), 'value'), 'ClinicalDocument/effectiveTime', 'creation time');
  const patient = readPatient(doc);
  const authorEl = node('h:author', doc);
  const author = required(
    readProfessional(authorEl && node('h:assignedAuthor', authorEl), attr(authorEl && node('h:time', authorEl), 'value')),
    'author/assignedAuthor/id', 'author',
  );
  const laEl = node('h:legalAuthenticator', doc);
  const legalAuthenticator = readProfessional(laEl && node('h:assignedEntity', laEl), attr(laEl && node('h:time', laEl), 'value'));
  const studies = readStudies(doc);
  if (studies.length === 0) {
    throw new CdaError('missing-field', 'The report names no imaging study (documentationOf/serviceEvent/id with the Study Instance UID).', 'documentationOf/serviceEvent/id');
  }

  const record: PublicationRecord = {
    documentId,
    setId,
    versionNumber,
    code: docCode,
    effectiveTime,
    confidentiality,
    languageCode: attr(node('h:languageCode', doc), 'code') ?? 'fr-FR',
    patient,
    author,
    studies,
    flags: opts.flags ?? { destDmp: true, masquePs: false, invisiblePatient: false },
    cda: typeof cda === 'string' ? Buffer.from(cda, 'utf8') : cda,
  };
  const title = text(node('h:title', doc));
  if (title) record.title = title;
  if (legalAuthenticator) record.legalAuthenticator = legalAuthenticator;
  const replaces = ii(node('h:relatedDocument[@typeCode="RPLC"]/h:parentDocument/h:id', doc));
  if (replaces) record.replaces = replaces;
  const cust = node('h:custodian/h:assignedCustodian/h:representedCustodianOrganization', doc);
  if (cust) {
    const c: { id?: InstanceIdentifier; name?: string } = {};
    const cid = ii(node('h:id', cust));
    if (cid) c.id = cid;
    const cname = text(node('h:name', cust));
    if (cname) c.name = cname;
    record.custodian = c;
  }
  const hcf = code(node('h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code', doc));
  if (hcf) record.healthcareFacilityType = hcf;
  // CI-SIS: the practice setting (DMP practiceSettingCode) is the author's organisation standardIndustryClassCode.
  const ps = code(node('h:author/h:assignedAuthor/h:representedOrganization/h:standardIndustryClassCode', doc))
    ?? code(node('h:legalAuthenticator/h:assignedEntity/h:representedOrganization/h:standardIndustryClassCode', doc));
  if (ps) record.practiceSetting = ps;
  return record;
}

export type ReportBody = { mediaType: string; data: Buffer } | { text: string };

/** The report body for display: the embedded document (PDF, …) of a level-1 CDA, or the narrative text. */
export function reportBody(cda: Buffer | string): ReportBody {
  const doc = clinicalDocument(cda);
  const t = node('h:component/h:nonXMLBody/h:text', doc);
  if (t) {
    const mediaType = attr(t, 'mediaType') ?? 'text/plain';
    const raw = t.textContent ?? '';
    if (attr(t, 'representation') === 'B64') {
      return { mediaType, data: Buffer.from(raw.replace(/\s+/g, ''), 'base64') };
    }
    const ref = attr(node('h:reference', t), 'value');
    if (ref && !raw.trim()) return { text: ref };
    return { mediaType, data: Buffer.from(raw.trim(), 'utf8') };
  }
  const sections = nodes('h:component/h:structuredBody/h:component/h:section', doc);
  if (sections.length > 0) {
    const parts = sections.map((s) => [text(node('h:title', s)), text(node('h:text', s))].filter(Boolean).join('\n'));
    return { text: parts.join('\n\n') };
  }
  throw new CdaError('missing-field', 'The report has no body (nonXMLBody or structuredBody).', 'component');
}
