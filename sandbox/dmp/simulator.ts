// DMP simulator: an XDS.b registry + repository on loopback HTTPS with mutual TLS, speaking SOAP 1.2
// (+ MTOM) on the wire. It verifies every VIHF against its trust anchors, validates ITI-41 metadata
// (validate.ts), persists in its own SQLite file, applies RPLC and ITI-57 status changes, and answers
// ITI-18 FindDocuments/GetDocuments and ITI-43 Retrieve. Sandbox only.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID, createHash } from 'node:crypto';
import { XMLSerializer } from '@xmldom/xmldom';
import { attr, element, elements, text, parseXml, type Element } from '../../gateway/src/dmp/dom.js';
import { decodeSoapMessage, encodeMtom, xopContent, type MimePart } from '../../gateway/src/dmp/mtom.js';
import { buildEnvelope, buildFault, parseEnvelope, registryErrorListXml, registryResponseXml } from '../../gateway/src/dmp/soap.js';
import { verifyVihf, VihfError, type VerifiedVihf } from '../../gateway/src/dmp/vihf.js';
import { ACTION, ASSOCIATION, ERROR_SEVERITY, IDENT, NS, RESPONSE_STATUS, SCHEME, STATUS, STORED_QUERY } from '../../gateway/src/dmp/xds-constants.js';
import { classificationsOf, codeOf, externalIdOf, readQueryParams, readRetrieveRequest, slotValues, statusFromUrn } from '../../gateway/src/dmp/xds-query.js';
import type { RegistryErrorDetail } from '../../gateway/src/dmp/errors.js';
import { openSimDb, type DocumentRow, type SimDb } from './store.js';
import { validateSubmission, INS_PATIENT_ID, type Submission } from './validate.js';

export interface DmpSimulatorOptions {
  dataDir: string;
  tls: { cert: string; key: string; ca: string | string[] };
  /** CA certificates (PEM) whose certificates may sign VIHF and submission signatures */
  vihfTrustAnchors: string[];
  port?: number;
  /** repositoryUniqueId this repository answers for */
  repositoryUniqueId?: string;
  maxBodyBytes?: number;
}

export interface DmpSimulator {
  url: string;
  registryUrl: string;
  repositoryUrl: string;
  repositoryUniqueId: string;
  db: SimDb;
  close(): Promise<void>;
}

class SoapFault extends Error {
  constructor(readonly code: 'Sender' | 'Receiver', readonly subcode: string | undefined, message: string) {
    super(message);
  }
}

const isUuid = (s: string): boolean => /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
const newEntryUuid = (): string => `urn:uuid:${randomUUID()}`;
const err = (errorCode: string, codeContext: string, location?: string): RegistryErrorDetail => ({ errorCode, codeContext, severity: ERROR_SEVERITY, location });

export async function startDmpSimulator(o: DmpSimulatorOptions): Promise<DmpSimulator> {
  const db = openSimDb(o.dataDir);
  const repositoryUniqueId = o.repositoryUniqueId ?? '1.2.250.1.213.4.1.1.1';
  const maxBody = o.maxBodyBytes ?? 64 * 1024 * 1024;
  const knownUid = db.prepare('SELECT 1 FROM documents WHERE unique_id = ? UNION SELECT 1 FROM submission_sets WHERE unique_id = ?');
  const isKnownUniqueId = (uid: string): boolean => !!knownUid.get(uid, uid);

  // ---------- ITI-41 ----------
  function provideAndRegister(payload: Element, attachments: Map<string, MimePart>, vihf: VerifiedVihf): string {
    if (payload.localName !== 'ProvideAndRegisterDocumentSetRequest') throw new SoapFault('Sender', undefined, 'expected ProvideAndRegisterDocumentSetRequest');
    const sor = element(payload, 'SubmitObjectsRequest');
    const rol = sor ? element(sor, 'RegistryObjectList') : undefined;
    if (!rol) return registryResponseXml([err('XDSRegistryMetadataError', 'no SubmitObjectsRequest/RegistryObjectList')]);
    const documents = new Map<string, Buffer>();
    const docErrors: RegistryErrorDetail[] = [];
    for (const d of elements(payload, 'Document')) {
      try {
        documents.set(attr(d, 'id') ?? '', xopContent(d, attachments));
      } catch (e) {
        docErrors.push(err('XDSMissingDocument', (e as Error).message, attr(d, 'id')));
      }
    }
    const packages = elements(rol, 'RegistryPackage');
    const isSs = (p: Element): boolean =>
      elements(rol, 'Classification').some((c) => attr(c, 'classifiedObject') === attr(p, 'id') && attr(c, 'classificationNode') === SCHEME.submissionSetNode) ||
      elements(p, 'Classification').some((c) => attr(c, 'classificationNode') === SCHEME.submissionSetNode);
    const sub: Submission = {
      submissionSet: packages.find(isSs),
      entries: elements(rol, 'ExtrinsicObject'),
      associations: elements(rol, 'Association'),
      documents,
    };
    const { errors, patientId } = validateSubmission(sub, { trustAnchors: o.vihfTrustAnchors, isKnownUniqueId, vihfPatientId: vihf.patientId });
    errors.unshift(...docErrors);
    // RPLC targets must exist, be Approved, and belong to the same patient
    const replaces: { source: string; target: string }[] = [];
    for (const a of sub.associations.filter((x) => attr(x, 'associationType') === ASSOCIATION.replace)) {
      const source = attr(a, 'sourceObject') ?? '';
      const target = attr(a, 'targetObject') ?? '';
      const old = db.prepare('SELECT status, patient_id FROM documents WHERE entry_uuid = ?').get(target) as { status: string; patient_id: string } | undefined;
      if (!old) errors.push(err('UnresolvedReferenceException', `RPLC target ${target} is unknown`, source));
      else if (old.status !== STATUS.approved) errors.push(err('XDSRegistryMetadataError', `RPLC target ${target} is not Approved`, source));
      else if (old.patient_id !== patientId) errors.push(err('XDSPatientIdDoesNotMatch', 'RPLC target belongs to another patient', source));
      if (!sub.entries.some((e) => attr(e, 'id') === source)) errors.push(err('XDSRegistryMetadataError', 'RPLC source is not in this submission', source));
      replaces.push({ source, target });
    }
    if (errors.length) return registryResponseXml(errors);

    // assign entryUUIDs, rewrite references, store
    const now = new Date().toISOString();
    const ss = sub.submissionSet!;
    const idMap = new Map<string, string>();
    const assign = (sym: string): string => {
      if (!idMap.has(sym)) idMap.set(sym, isUuid(sym) && !db.prepare('SELECT 1 FROM documents WHERE entry_uuid = ?').get(sym) ? sym : newEntryUuid());
      return idMap.get(sym)!;
    };
    const ssUuid = assign(attr(ss, 'id')!);
    const ser = new XMLSerializer();
    const tx = db.transaction(() => {
      db.prepare('INSERT INTO submission_sets VALUES (?,?,?,?,?)').run(ssUuid, externalIdOf(ss, IDENT.ssUniqueId), patientId, externalIdOf(ss, IDENT.ssSourceId), now);
      for (const e of sub.entries) {
        const sym = attr(e, 'id')!;
        const uuid = assign(sym);
        const content = documents.get(sym)!;
        e.setAttribute('id', uuid);
        e.setAttribute('lid', uuid);
        e.setAttribute('status', '__STATUS__');
        for (const c of elements(e, 'Classification')) {
          c.setAttribute('classifiedObject', uuid);
          c.setAttribute('id', newEntryUuid());
        }
        for (const x of elements(e, 'ExternalIdentifier')) {
          x.setAttribute('registryObject', uuid);
          x.setAttribute('id', newEntryUuid());
        }
        addSlot(e, 'repositoryUniqueId', repositoryUniqueId);
        const author = classificationsOf(e, SCHEME.deAuthor)[0];
        db.prepare('INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)').run(
          uuid,
          externalIdOf(e, IDENT.deUniqueId),
          patientId,
          STATUS.approved,
          attr(e, 'mimeType'),
          codeKey(classificationsOf(e, SCHEME.typeCode)[0]),
          codeKey(classificationsOf(e, SCHEME.classCode)[0]),
          JSON.stringify(classificationsOf(e, SCHEME.eventCode).map(codeKey)),
          JSON.stringify(classificationsOf(e, SCHEME.confidentiality).map(codeKey)),
          slotValues(e, 'creationTime')[0] ?? null,
          slotValues(e, 'serviceStartTime')[0] ?? null,
          ssUuid,
          author ? (slotValues(author, 'authorPerson')[0] ?? null) : null,
          ser.serializeToString(e as never),
          content,
          content.length,
          createHash('sha1').update(content).digest('hex'),
          now,
        );
      }
      for (const a of sub.associations) {
        const src = attr(a, 'sourceObject')!;
        const tgt = attr(a, 'targetObject')!;
        db.prepare('INSERT INTO associations VALUES (?,?,?,?,?)').run(newEntryUuid(), attr(a, 'associationType'), idMap.get(src) ?? src, idMap.get(tgt) ?? tgt, ssUuid);
      }
      for (const r of replaces) db.prepare('UPDATE documents SET status = ? WHERE entry_uuid = ?').run(STATUS.deprecated, r.target);
    });
    tx();
    return registryResponseXml();
  }

  // ---------- ITI-57 ----------
  function updateDocumentSet(payload: Element): string {
    if (payload.localName !== 'SubmitObjectsRequest') throw new SoapFault('Sender', undefined, 'expected SubmitObjectsRequest');
    const rol = element(payload, 'RegistryObjectList');
    const errors: RegistryErrorDetail[] = [];
    const ss = rol ? elements(rol, 'RegistryPackage')[0] : undefined;
    const patientId = ss ? externalIdOf(ss, IDENT.ssPatientId) : undefined;
    if (!ss || !patientId) errors.push(err('XDSRegistryMetadataError', 'ITI-57 needs a SubmissionSet with a patientId'));
    else if (!INS_PATIENT_ID.test(patientId)) errors.push(err('XDSUnknownPatientId', `patient id ${patientId} is not an INS`));
    const ssUid = ss ? externalIdOf(ss, IDENT.ssUniqueId) : undefined;
    if (!ssUid) errors.push(err('XDSRegistryMetadataError', 'XDSSubmissionSet.uniqueId is missing'));
    else if (isKnownUniqueId(ssUid)) errors.push(err('XDSDuplicateUniqueIdInRegistry', `submission set uniqueId ${ssUid} already registered`));
    const updates = rol ? elements(rol, 'Association').filter((a) => attr(a, 'associationType') === ASSOCIATION.updateAvailabilityStatus) : [];
    if (!updates.length) errors.push(err('XDSMetadataUpdateOperationError', 'no UpdateAvailabilityStatus association'));
    const allowed = new Set<string>([STATUS.approved, STATUS.deprecated, STATUS.deleted, STATUS.archived]);
    const changes: { uuid: string; to: string }[] = [];
    for (const a of updates) {
      const target = attr(a, 'targetObject') ?? '';
      const from = slotValues(a, 'OriginalStatus')[0];
      const to = slotValues(a, 'NewStatus')[0];
      const row = db.prepare('SELECT status, patient_id FROM documents WHERE entry_uuid = ?').get(target) as { status: string; patient_id: string } | undefined;
      if (!row) errors.push(err('UnresolvedReferenceException', `${target} is unknown`));
      else if (row.patient_id !== patientId) errors.push(err('XDSPatientIdDoesNotMatch', `${target} belongs to another patient`));
      else if (row.status !== from) errors.push(err('XDSMetadataUpdateOperationError', `OriginalStatus ${from} is not the current status`));
      if (!to || !allowed.has(to)) errors.push(err('XDSMetadataUpdateOperationError', `NewStatus ${to} is not allowed`));
      changes.push({ uuid: target, to: to ?? '' });
    }
    if (errors.length) return registryResponseXml(errors);
    db.transaction(() => {
      db.prepare('INSERT INTO submission_sets VALUES (?,?,?,?,?)').run(newEntryUuid(), ssUid, patientId, externalIdOf(ss!, IDENT.ssSourceId) ?? '', new Date().toISOString());
      for (const c of changes) db.prepare('UPDATE documents SET status = ? WHERE entry_uuid = ?').run(c.to, c.uuid);
    })();
    return registryResponseXml();
  }

  // ---------- ITI-18 ----------
  function storedQuery(payload: Element, vihf: VerifiedVihf): string {
    if (payload.localName !== 'AdhocQueryRequest') throw new SoapFault('Sender', undefined, 'expected AdhocQueryRequest');
    const q = element(payload, 'AdhocQuery');
    const qid = attr(q, 'id');
    const params = q ? readQueryParams(q) : new Map<string, string[][]>();
    const one = (n: string): string | undefined => params.get(n)?.[0]?.[0];
    const answer = (rows: DocumentRow[], errors: RegistryErrorDetail[] = []): string =>
      `<query:AdhocQueryResponse xmlns:query="${NS.query}" status="${errors.length ? RESPONSE_STATUS.failure : RESPONSE_STATUS.success}">` +
      registryErrorListXml(errors) +
      `<rim:RegistryObjectList xmlns:rim="${NS.rim}">${errors.length ? '' : rows.map((r) => r.metadata_xml.replace('__STATUS__', r.status)).join('')}</rim:RegistryObjectList>` +
      `</query:AdhocQueryResponse>`;
    if (qid === STORED_QUERY.findDocuments) {
      const pid = one('$XDSDocumentEntryPatientId');
      const statuses = params.get('$XDSDocumentEntryStatus')?.flat() ?? [];
      if (!pid || !statuses.length) return answer([], [err('XDSStoredQueryParamNumber', 'FindDocuments needs $XDSDocumentEntryPatientId and $XDSDocumentEntryStatus')]);
      if (!INS_PATIENT_ID.test(pid)) return answer([], [err('XDSUnknownPatientId', `patient id ${pid} is not an INS`)]);
      if (vihf.patientId !== pid) return answer([], [err('XDSPatientIdDoesNotMatch', 'the VIHF resource-id is not the queried patient')]);
      let rows = db.prepare('SELECT * FROM documents WHERE patient_id = ?').all(pid) as DocumentRow[];
      rows = rows.filter((r) => statuses.includes(r.status));
      const inList = (name: string, get: (r: DocumentRow) => string[]): void => {
        for (const group of params.get(name) ?? []) {
          const wanted = new Set(group.map((v) => v.replace(/\^\^/, '|')));
          rows = rows.filter((r) => get(r).some((c) => wanted.has(c)));
        }
      };
      inList('$XDSDocumentEntryTypeCode', (r) => (r.type_code ? [r.type_code] : []));
      inList('$XDSDocumentEntryClassCode', (r) => (r.class_code ? [r.class_code] : []));
      inList('$XDSDocumentEntryEventCodeList', (r) => JSON.parse(r.event_codes) as string[]);
      const range = (from: string | undefined, to: string | undefined, get: (r: DocumentRow) => string | null): void => {
        if (from) rows = rows.filter((r) => (get(r) ?? '') >= from);
        if (to) rows = rows.filter((r) => (get(r) ?? '') !== '' && (get(r) ?? '') < to);
      };
      range(one('$XDSDocumentEntryServiceStartTimeFrom'), one('$XDSDocumentEntryServiceStartTimeTo'), (r) => r.service_start);
      range(one('$XDSDocumentEntryCreationTimeFrom'), one('$XDSDocumentEntryCreationTimeTo'), (r) => r.creation_time);
      return answer(rows);
    }
    if (qid === STORED_QUERY.getDocuments) {
      const uuids = params.get('$XDSDocumentEntryEntryUUID')?.flat() ?? [];
      const uids = params.get('$XDSDocumentEntryUniqueId')?.flat() ?? [];
      if (!uuids.length === !uids.length) return answer([], [err('XDSStoredQueryParamNumber', 'GetDocuments needs exactly one of $XDSDocumentEntryEntryUUID / $XDSDocumentEntryUniqueId')]);
      const col = uuids.length ? 'entry_uuid' : 'unique_id';
      const vals = uuids.length ? uuids : uids;
      const rows = db.prepare(`SELECT * FROM documents WHERE ${col} IN (${vals.map(() => '?').join(',')})`).all(...vals) as DocumentRow[];
      return answer(rows);
    }
    return answer([], [err('XDSUnknownStoredQuery', `unknown stored query ${qid}`)]);
  }

  // ---------- ITI-43 ----------
  function retrieve(payload: Element): { envelopeBody: string; attachments: MimePart[] } {
    if (payload.localName !== 'RetrieveDocumentSetRequest') throw new SoapFault('Sender', undefined, 'expected RetrieveDocumentSetRequest');
    const errors: RegistryErrorDetail[] = [];
    const attachments: MimePart[] = [];
    let docs = '';
    for (const r of readRetrieveRequest(payload)) {
      if (r.repositoryUniqueId !== repositoryUniqueId) {
        errors.push(err('XDSUnknownRepositoryId', `unknown repository ${r.repositoryUniqueId}`, r.documentUniqueId));
        continue;
      }
      const row = db.prepare('SELECT * FROM documents WHERE unique_id = ?').get(r.documentUniqueId) as DocumentRow | undefined;
      if (!row || row.status === STATUS.deleted) {
        errors.push(err('XDSDocumentUniqueIdError', `no document ${r.documentUniqueId}`, r.documentUniqueId));
        continue;
      }
      const cid = `doc${attachments.length + 1}@dmp-simulator`;
      attachments.push({ contentId: cid, contentType: 'application/octet-stream', content: row.content });
      docs +=
        `<xds:DocumentResponse><xds:RepositoryUniqueId>${repositoryUniqueId}</xds:RepositoryUniqueId>` +
        `<xds:DocumentUniqueId>${row.unique_id}</xds:DocumentUniqueId><xds:mimeType>${row.mime_type}</xds:mimeType>` +
        `<xds:Document><xop:Include xmlns:xop="${NS.xop}" href="cid:${cid}"/></xds:Document></xds:DocumentResponse>`;
    }
    const status = !errors.length ? RESPONSE_STATUS.success : attachments.length ? RESPONSE_STATUS.partialSuccess : RESPONSE_STATUS.failure;
    return {
      envelopeBody:
        `<xds:RetrieveDocumentSetResponse xmlns:xds="${NS.xds}"><rs:RegistryResponse xmlns:rs="${NS.rs}" status="${status}">` +
        registryErrorListXml(errors) +
        `</rs:RegistryResponse>${docs}</xds:RetrieveDocumentSetResponse>`,
      attachments,
    };
  }

  // ---------- HTTP ----------
  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
      n += (c as Buffer).length;
      if (n > maxBody) throw new SoapFault('Sender', undefined, 'request too large');
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  }

  function send(res: ServerResponse, status: number, contentType: string, body: Buffer | string): void {
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  function sendSoap(res: ServerResponse, action: string, relatesTo: string | undefined, body: string, attachments?: MimePart[]): void {
    const env = buildEnvelope({ action, relatesTo, body });
    if (attachments) {
      const m = encodeMtom(env, attachments, action);
      send(res, 200, m.contentType, m.body);
    } else send(res, 200, `application/soap+xml; charset=UTF-8; action="${action}"`, env);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/_sim/documents') {
      const rows = db.prepare('SELECT entry_uuid, unique_id, patient_id, status, mime_type, type_code, size, submitted_at FROM documents ORDER BY submitted_at').all() as DocumentRow[];
      const out = rows.map((r) => ({
        entryUuid: r.entry_uuid,
        uniqueId: r.unique_id,
        patientId: r.patient_id,
        status: statusFromUrn(r.status),
        mimeType: r.mime_type,
        typeCode: r.type_code,
        size: r.size,
        submittedAt: r.submitted_at,
      }));
      return send(res, 200, 'application/json', JSON.stringify(out));
    }
    if (req.method !== 'POST' || (path !== '/registry' && path !== '/repository')) return send(res, 404, 'text/plain', 'not found');
    let relatesTo: string | undefined;
    try {
      const body = await readBody(req);
      const msg = decodeSoapMessage(body, String(req.headers['content-type'] ?? ''));
      const env = parseEnvelope(msg.envelope);
      relatesTo = env.messageId;
      if (!env.action) throw new SoapFault('Sender', 'wsa:MessageAddressingHeaderRequired', 'wsa:Action is missing');
      if (!env.assertion) throw new SoapFault('Sender', 'wsse:InvalidSecurity', 'no VIHF assertion in wsse:Security');
      let vihf: VerifiedVihf;
      try {
        vihf = verifyVihf(env.assertion, o.vihfTrustAnchors);
      } catch (e) {
        if (e instanceof VihfError) throw new SoapFault('Sender', e.faultCode, e.message);
        throw e;
      }
      if (!env.payload) throw new SoapFault('Sender', undefined, 'empty SOAP body');
      if (path === '/repository' && env.action === ACTION.iti41) {
        return sendSoap(res, ACTION.iti41Response, relatesTo, provideAndRegister(env.payload, msg.attachments, vihf), []);
      }
      if (path === '/repository' && env.action === ACTION.iti43) {
        const r = retrieve(env.payload);
        return sendSoap(res, ACTION.iti43Response, relatesTo, r.envelopeBody, r.attachments);
      }
      if (path === '/registry' && env.action === ACTION.iti18) return sendSoap(res, ACTION.iti18Response, relatesTo, storedQuery(env.payload, vihf));
      if (path === '/registry' && env.action === ACTION.iti57) return sendSoap(res, ACTION.iti57Response, relatesTo, updateDocumentSet(env.payload));
      throw new SoapFault('Sender', 'wsa:ActionNotSupported', `action ${env.action} is not supported at ${path}`);
    } catch (e) {
      const f = e instanceof SoapFault ? e : new SoapFault(e instanceof Error && /XML|SOAP|multipart|content type/i.test(e.message) ? 'Sender' : 'Receiver', undefined, (e as Error).message);
      send(res, f.code === 'Sender' ? 400 : 500, 'application/soap+xml; charset=UTF-8', buildFault({ code: f.code, subcode: f.subcode, reason: f.message, relatesTo }));
    }
  }

  const server: Server = createServer({ cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const url = `https://127.0.0.1:${port}`;
  return {
    url,
    registryUrl: `${url}/registry`,
    repositoryUrl: `${url}/repository`,
    repositoryUniqueId,
    db,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      db.close();
    },
  };
}

function codeKey(c: Element | undefined): string | null {
  if (!c) return null;
  const { code, scheme } = codeOf(c);
  return `${code}|${scheme}`;
}

function addSlot(e: Element, name: string, value: string): void {
  const doc = e.ownerDocument!;
  const slot = doc.createElementNS(NS.rim, 'Slot');
  slot.setAttribute('name', name);
  const vl = doc.createElementNS(NS.rim, 'ValueList');
  const v = doc.createElementNS(NS.rim, 'Value');
  v.appendChild(doc.createTextNode(value));
  vl.appendChild(v);
  slot.appendChild(vl);
  e.insertBefore(slot, e.firstChild);
}

export { parseXml, text };
