// ITI-18 Registry Stored Query (FindDocuments, GetDocuments) and ITI-43 Retrieve Document Set:
// request builders, and readers of their answers into typed document entries.
import { NS, SCHEME, IDENT, STATUS, STORED_QUERY, VALUE_SET_OID } from './xds-constants.js';
import { attr, element, elements, esc, text, type Element } from './dom.js';
import { xopContent, type MimePart } from './mtom.js';
import { readRegistryResponse, type RegistryResponseResult } from './soap.js';

export type AvailabilityStatus = 'Approved' | 'Deprecated' | 'Deleted' | 'Archived';

export const STATUS_URN: Record<AvailabilityStatus, string> = {
  Approved: STATUS.approved,
  Deprecated: STATUS.deprecated,
  Deleted: STATUS.deleted,
  Archived: STATUS.archived,
};

export function statusFromUrn(urn: string | undefined): AvailabilityStatus | string {
  const hit = (Object.keys(STATUS_URN) as AvailabilityStatus[]).find((k) => STATUS_URN[k] === urn);
  return hit ?? urn ?? '';
}

export interface CodeRef {
  code: string;
  scheme: string;
}

export interface FindDocumentsQuery {
  /** XDS patient id `INS^^^&oid&ISO^NH` */
  patientId: string;
  status?: AvailabilityStatus[];          // default Approved
  typeCodes?: CodeRef[];
  classCodes?: CodeRef[];
  /** event codes (modality / anatomic region / act); each code is ANDed as in IHE */
  eventCodes?: CodeRef[];
  /** shorthand for modality event codes (JDV 1.2.250.1.213.1.1.5.618) */
  modalities?: string[];
  serviceStartFrom?: string;              // DTM
  serviceStartTo?: string;
  creationFrom?: string;
  creationTo?: string;
}

function param(name: string, values: string[]): string {
  return `<rim:Slot name="${esc(name)}"><rim:ValueList>${values.map((v) => `<rim:Value>${esc(v)}</rim:Value>`).join('')}</rim:ValueList></rim:Slot>`;
}

function quoted(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

function list(vs: string[]): string {
  return `(${vs.map(quoted).join(',')})`;
}

function adhoc(queryId: string, slots: string): string {
  return (
    `<query:AdhocQueryRequest xmlns:query="${NS.query}" xmlns:rim="${NS.rim}">` +
    `<query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>` +
    `<rim:AdhocQuery id="${queryId}">${slots}</rim:AdhocQuery></query:AdhocQueryRequest>`
  );
}

export function findDocumentsRequest(q: FindDocumentsQuery): string {
  let s = param('$XDSDocumentEntryPatientId', [quoted(q.patientId)]);
  s += param('$XDSDocumentEntryStatus', [list((q.status ?? ['Approved']).map((x) => STATUS_URN[x]))]);
  if (q.typeCodes?.length) s += param('$XDSDocumentEntryTypeCode', [list(q.typeCodes.map((c) => `${c.code}^^${c.scheme}`))]);
  if (q.classCodes?.length) s += param('$XDSDocumentEntryClassCode', [list(q.classCodes.map((c) => `${c.code}^^${c.scheme}`))]);
  const events = [...(q.eventCodes ?? []), ...(q.modalities ?? []).map((m) => ({ code: m, scheme: VALUE_SET_OID.modality }))];
  // one Slot per code: codes in separate slots are ANDed
  for (const e of events) s += param('$XDSDocumentEntryEventCodeList', [list([`${e.code}^^${e.scheme}`])]);
  if (q.serviceStartFrom) s += param('$XDSDocumentEntryServiceStartTimeFrom', [q.serviceStartFrom]);
  if (q.serviceStartTo) s += param('$XDSDocumentEntryServiceStartTimeTo', [q.serviceStartTo]);
  if (q.creationFrom) s += param('$XDSDocumentEntryCreationTimeFrom', [q.creationFrom]);
  if (q.creationTo) s += param('$XDSDocumentEntryCreationTimeTo', [q.creationTo]);
  return adhoc(STORED_QUERY.findDocuments, s);
}

export function getDocumentsRequest(by: { entryUuids?: string[]; uniqueIds?: string[] }): string {
  const s = by.entryUuids?.length
    ? param('$XDSDocumentEntryEntryUUID', [list(by.entryUuids)])
    : param('$XDSDocumentEntryUniqueId', [list(by.uniqueIds ?? [])]);
  return adhoc(STORED_QUERY.getDocuments, s);
}

/** Parameters of an AdhocQuery: name → list of parsed values (IHE `('a','b')` lists are flattened per slot). */
export function readQueryParams(adhocQuery: Element): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  for (const sl of elements(adhocQuery, 'Slot')) {
    const name = attr(sl, 'name') ?? '';
    const vl = element(sl, 'ValueList');
    const values: string[] = [];
    for (const v of vl ? elements(vl, 'Value') : []) values.push(...parseQueryValue(text(v)));
    out.set(name, [...(out.get(name) ?? []), values]);
  }
  return out;
}

/** `'x'`, `('x','y')`, or a bare number/DTM. */
export function parseQueryValue(v: string): string[] {
  let s = v.trim();
  if (s.startsWith('(') && s.endsWith(')')) s = s.slice(1, -1);
  const out: string[] = [];
  const re = /\s*(?:'((?:[^']|'')*)'|([^,]+))\s*(?:,|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) && m[0].length) out.push(m[1] !== undefined ? m[1].replace(/''/g, "'") : m[2].trim());
  return out;
}

export interface DocumentEntry {
  entryUuid: string;
  uniqueId: string;
  lid?: string;
  status: AvailabilityStatus | string;
  mimeType: string;
  patientId: string;
  repositoryUniqueId?: string;
  title?: string;
  creationTime?: string;
  serviceStartTime?: string;
  size?: number;
  hash?: string;
  classCode?: CodeRef;
  typeCode?: CodeRef;
  formatCode?: CodeRef;
  confidentialityCodes: CodeRef[];
  eventCodes: CodeRef[];
  healthcareFacilityTypeCode?: CodeRef;
  practiceSettingCode?: CodeRef;
  referenceIds: string[];
  authorPerson?: string;
  authorInstitution?: string;
}

export function slotValues(e: Element, name: string): string[] {
  const sl = elements(e, 'Slot').find((s) => attr(s, 'name') === name);
  const vl = sl ? element(sl, 'ValueList') : undefined;
  return vl ? elements(vl, 'Value').map(text) : [];
}

export function classificationsOf(e: Element, scheme: string): Element[] {
  return elements(e, 'Classification').filter((c) => attr(c, 'classificationScheme') === scheme);
}

export function codeOf(c: Element): CodeRef {
  return { code: attr(c, 'nodeRepresentation') ?? '', scheme: slotValues(c, 'codingScheme')[0] ?? '' };
}

export function externalIdOf(e: Element, scheme: string): string | undefined {
  const x = elements(e, 'ExternalIdentifier').find((i) => attr(i, 'identificationScheme') === scheme);
  return x ? attr(x, 'value') : undefined;
}

export function readDocumentEntry(e: Element): DocumentEntry {
  const one = (scheme: string): CodeRef | undefined => {
    const c = classificationsOf(e, scheme)[0];
    return c ? codeOf(c) : undefined;
  };
  const author = classificationsOf(e, SCHEME.deAuthor)[0];
  const size = slotValues(e, 'size')[0];
  const nameEl = element(e, 'Name');
  return {
    entryUuid: attr(e, 'id') ?? '',
    lid: attr(e, 'lid'),
    uniqueId: externalIdOf(e, IDENT.deUniqueId) ?? '',
    status: statusFromUrn(attr(e, 'status')),
    mimeType: attr(e, 'mimeType') ?? '',
    patientId: externalIdOf(e, IDENT.dePatientId) ?? '',
    repositoryUniqueId: slotValues(e, 'repositoryUniqueId')[0],
    title: nameEl ? attr(element(nameEl, 'LocalizedString'), 'value') : undefined,
    creationTime: slotValues(e, 'creationTime')[0],
    serviceStartTime: slotValues(e, 'serviceStartTime')[0],
    size: size ? Number(size) : undefined,
    hash: slotValues(e, 'hash')[0],
    classCode: one(SCHEME.classCode),
    typeCode: one(SCHEME.typeCode),
    formatCode: one(SCHEME.formatCode),
    confidentialityCodes: classificationsOf(e, SCHEME.confidentiality).map(codeOf),
    eventCodes: classificationsOf(e, SCHEME.eventCode).map(codeOf),
    healthcareFacilityTypeCode: one(SCHEME.healthcareFacilityType),
    practiceSettingCode: one(SCHEME.practiceSetting),
    referenceIds: slotValues(e, 'urn:ihe:iti:xds:2013:referenceIdList'),
    authorPerson: author ? slotValues(author, 'authorPerson')[0] : undefined,
    authorInstitution: author ? slotValues(author, 'authorInstitution')[0] : undefined,
  };
}

export interface QueryResult extends RegistryResponseResult {
  documents: DocumentEntry[];
}

/** Read query:AdhocQueryResponse (LeafClass). */
export function readAdhocQueryResponse(e: Element): QueryResult {
  const rol = element(e, 'RegistryObjectList');
  return { ...readRegistryResponse(e), documents: (rol ? elements(rol, 'ExtrinsicObject') : []).map(readDocumentEntry) };
}

// ---- ITI-43 ----

export interface DocumentRequest {
  repositoryUniqueId: string;
  documentUniqueId: string;
}

export function retrieveRequest(docs: DocumentRequest[]): string {
  return (
    `<xds:RetrieveDocumentSetRequest xmlns:xds="${NS.xds}">` +
    docs
      .map(
        (d) =>
          `<xds:DocumentRequest><xds:RepositoryUniqueId>${esc(d.repositoryUniqueId)}</xds:RepositoryUniqueId>` +
          `<xds:DocumentUniqueId>${esc(d.documentUniqueId)}</xds:DocumentUniqueId></xds:DocumentRequest>`,
      )
      .join('') +
    `</xds:RetrieveDocumentSetRequest>`
  );
}

export function readRetrieveRequest(e: Element): DocumentRequest[] {
  return elements(e, 'DocumentRequest').map((d) => ({
    repositoryUniqueId: text(element(d, 'RepositoryUniqueId')),
    documentUniqueId: text(element(d, 'DocumentUniqueId')),
  }));
}

export interface RetrievedDocument extends DocumentRequest {
  mimeType: string;
  content: Buffer;
}

export interface RetrieveResult extends RegistryResponseResult {
  documents: RetrievedDocument[];
}

export function readRetrieveResponse(e: Element, attachments: Map<string, MimePart>): RetrieveResult {
  const rr = element(e, 'RegistryResponse');
  const base = rr ? readRegistryResponse(rr) : { status: 'Failure' as const, errors: [] };
  return {
    ...base,
    documents: elements(e, 'DocumentResponse').map((d) => ({
      repositoryUniqueId: text(element(d, 'RepositoryUniqueId')),
      documentUniqueId: text(element(d, 'DocumentUniqueId')),
      mimeType: text(element(d, 'mimeType')),
      content: xopContent(element(d, 'Document')!, attachments),
    })),
  };
}
