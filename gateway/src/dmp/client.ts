// The DMP client: ITI-41 / ITI-18 / ITI-43 / ITI-57 over SOAP 1.2 (+ MTOM) on mutual TLS (undici),
// each request carrying a signed VIHF. Failures become DmpError with a `retryable` verdict.
import { Agent, request } from 'undici';
import type { Code, Professional, PublicationRecord } from '../cda/types.js';
import { DmpError, isRetryableXdsCode } from './errors.js';
import { decodeSoapMessage, encodeMtom, type MimePart } from './mtom.js';
import { buildEnvelope, parseEnvelope, readFault, readRegistryResponse, type ParsedEnvelope } from './soap.js';
import { buildVihf, type VihfActor, type AuthenticationMode } from './vihf.js';
import { ACTION, NS, type CodedValue } from './xds-constants.js';
import { buildStatusUpdate, buildSubmission, type KosInfo } from './xds-metadata.js';
import { newUid } from '../dicom/uid.js';
import { xcn, xon } from './hl7-datatypes.js';
import {
  findDocumentsRequest,
  getDocumentsRequest,
  readAdhocQueryResponse,
  readRetrieveResponse,
  retrieveRequest,
  STATUS_URN,
  type AvailabilityStatus,
  type DocumentEntry,
  type DocumentRequest,
  type FindDocumentsQuery,
  type RetrievedDocument,
} from './xds-query.js';

export interface DmpClientConfig {
  endpoints: { registry: string; repository: string };
  /** PEM client certificate, key, and the CA(s) that issued the DMP's server certificate */
  tls: { cert: string; key: string; ca: string | string[] };
  vihf: {
    signingCert: string;
    signingKey: string;
    /** Identifiant_Structure */
    finess: string;
    lpsName: string;
    lpsVersion: string;
    lpsHomologationId: string;
    lpsId?: string;
    issuer?: string;
    /** Secteur_Activite of the box's structure, e.g. SA07 / 1.2.250.1.71.4.2.4 */
    sector: Code;
  };
  submitter: {
    /** XDSSubmissionSet.sourceId: the box's OID; new UIDs are made under it unless uidRoot is given */
    sourceId: string;
    uidRoot?: string;
    contentType?: CodedValue;
    studyUidAuthority?: string;
    /** who signs ITI-57 submissions when no author is given */
    defaultAuthor?: Professional;
  };
  timeoutMs?: number;
}

/** A clinician calling through the box (PSC-authenticated): the VIHF subject. */
export interface ClinicianIdentity {
  rpps: string;
  displayName: string;
  roles: Code[];
  sector?: Code;
  authMode?: AuthenticationMode;
  purposeOfUse?: VihfActor['purposeOfUse'];
}

export interface ProvideAndRegisterInput {
  record: PublicationRecord;
  kos: KosInfo;
  includeReport?: boolean;
  /** entryUUIDs being replaced (RPLC) */
  replaces?: { kos?: string; report?: string };
}

export interface ProvideAndRegisterResult {
  status: 'Success';
  submissionSetUid: string;
  kosUniqueId: string;
  reportUniqueId?: string;
  entryUuids: { kos: string; report?: string };
}

export const PROFESSION_MEDECIN: Code = { code: '10', codeSystem: '1.2.250.1.71.1.2.7', displayName: 'Medecin' };

function displayName(p: Professional): string {
  return [p.given, p.family].filter(Boolean).join(' ') || (p.id.extension ?? p.id.root);
}

export class DmpClient {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(private readonly cfg: DmpClientConfig) {
    this.timeoutMs = cfg.timeoutMs ?? 30_000;
    this.agent = new Agent({
      connect: { cert: cfg.tls.cert, key: cfg.tls.key, ca: cfg.tls.ca, rejectUnauthorized: true },
      connections: 8,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** ITI-41: publish the KOS (and the report), then learn the entryUUIDs the DMP assigned. */
  async provideAndRegister(sub: ProvideAndRegisterInput): Promise<ProvideAndRegisterResult> {
    const sent = await this.submitDocuments(sub);
    const actor = this.authorActor(sub.record.author);
    const { kosUniqueId, reportUniqueId } = sent;
    const found = await this.getDocuments({ uniqueIds: [kosUniqueId, ...(reportUniqueId ? [reportUniqueId] : [])] }, actor, sent.patientId);
    const byUid = new Map(found.map((d) => [d.uniqueId, d.entryUuid]));
    const kosUuid = byUid.get(kosUniqueId);
    if (!kosUuid) throw new DmpError({ code: 'protocol', message: 'the DMP accepted the KOS but does not return it', retryable: false });
    return {
      status: 'Success',
      submissionSetUid: sent.submissionSetUid,
      kosUniqueId,
      reportUniqueId,
      entryUuids: { kos: kosUuid, report: reportUniqueId ? byUid.get(reportUniqueId) : undefined },
    };
  }

  /**
   * ITI-41 alone: the DMP's Success answer carries no entryUUIDs (it assigns them), so a caller that
   * needs them only later (to replace or withdraw) can skip provideAndRegister's ITI-18 look-up.
   */
  async submitDocuments(sub: ProvideAndRegisterInput): Promise<Omit<ProvideAndRegisterResult, 'entryUuids'> & { patientId: string }> {
    const root = this.cfg.submitter.uidRoot ?? undefined;
    const built = buildSubmission({
      record: sub.record,
      kos: sub.kos,
      includeReport: sub.includeReport,
      replaces: sub.replaces,
      submitter: {
        sourceId: this.cfg.submitter.sourceId,
        submissionSetUid: newUid(root),
        signatureUid: newUid(root),
        contentType: this.cfg.submitter.contentType,
        studyUidAuthority: this.cfg.submitter.studyUidAuthority,
      },
      signer: { certPem: this.cfg.vihf.signingCert, keyPem: this.cfg.vihf.signingKey },
    });
    const actor = this.authorActor(sub.record.author);
    const attachments: MimePart[] = built.documents.map((d, i) => ({
      contentId: `doc${i + 1}@drimbox`,
      contentType: 'application/octet-stream',
      content: d.content,
    }));
    const body =
      `<xds:ProvideAndRegisterDocumentSetRequest xmlns:xds="${NS.xds}">` +
      built.submitObjectsRequest +
      built.documents
        .map((d, i) => `<xds:Document id="${d.id}"><xop:Include xmlns:xop="${NS.xop}" href="cid:${attachments[i].contentId}"/></xds:Document>`)
        .join('') +
      `</xds:ProvideAndRegisterDocumentSetRequest>`;
    const env = await this.call(this.cfg.endpoints.repository, ACTION.iti41, body, actor, built.patientId, attachments);
    const rr = readRegistryResponse(this.expectPayload(env, 'RegistryResponse'));
    this.throwOnFailure(rr);

    const kosUniqueId = built.documents.find((d) => d.id === built.ids.kos)!.uniqueId;
    const reportUniqueId = built.ids.report ? built.documents.find((d) => d.id === built.ids.report)!.uniqueId : undefined;
    return { status: 'Success', submissionSetUid: built.submissionSetUid, kosUniqueId, reportUniqueId, patientId: built.patientId };
  }

  /** ITI-57: change the availability status of a document entry (e.g. withdraw with Deleted). */
  async updateStatus(
    entryUuid: string,
    newStatus: Extract<AvailabilityStatus, 'Deleted' | 'Approved' | 'Archived'>,
    patientId: string,
    opts: { originalStatus?: AvailabilityStatus; author?: Professional } = {},
  ): Promise<{ status: 'Success' }> {
    const author = opts.author ?? this.cfg.submitter.defaultAuthor;
    if (!author) throw new DmpError({ code: 'config', message: 'updateStatus needs an author (or submitter.defaultAuthor)', retryable: false });
    // ITI-57's body is the lcm:SubmitObjectsRequest itself (no wrapper element)
    const submit = buildStatusUpdate({
      entryUuid,
      originalStatus: STATUS_URN[opts.originalStatus ?? (newStatus === 'Approved' ? 'Deleted' : 'Approved')],
      newStatus: STATUS_URN[newStatus],
      patientId,
      sourceId: this.cfg.submitter.sourceId,
      submissionSetUid: newUid(this.cfg.submitter.uidRoot),
      author: { person: xcn(author), institution: author.organization ? xon(author.organization) : undefined },
      contentType: this.cfg.submitter.contentType,
    });
    const env = await this.call(this.cfg.endpoints.registry, ACTION.iti57, submit, this.authorActor(author), patientId);
    this.throwOnFailure(readRegistryResponse(this.expectPayload(env, 'RegistryResponse')));
    return { status: 'Success' };
  }

  /** ITI-18 FindDocuments (LeafClass) on behalf of a clinician. */
  async findDocuments(q: FindDocumentsQuery, as: ClinicianIdentity): Promise<DocumentEntry[]> {
    const env = await this.call(this.cfg.endpoints.registry, ACTION.iti18, findDocumentsRequest(q), this.clinicianActor(as), q.patientId);
    const res = readAdhocQueryResponse(this.expectPayload(env, 'AdhocQueryResponse'));
    this.throwOnFailure(res);
    return res.documents;
  }

  /** ITI-18 GetDocuments by entryUUIDs or uniqueIds. */
  async getDocuments(by: { entryUuids?: string[]; uniqueIds?: string[] }, as: ClinicianIdentity | VihfActor, patientId?: string): Promise<DocumentEntry[]> {
    const actor = 'nameId' in as ? as : this.clinicianActor(as);
    const env = await this.call(this.cfg.endpoints.registry, ACTION.iti18, getDocumentsRequest(by), actor, patientId);
    const res = readAdhocQueryResponse(this.expectPayload(env, 'AdhocQueryResponse'));
    this.throwOnFailure(res);
    return res.documents;
  }

  /** ITI-43: fetch documents from the repository (answers come as MTOM). */
  async retrieveDocuments(docs: DocumentRequest[], opts: { as?: ClinicianIdentity; patientId?: string } = {}): Promise<RetrievedDocument[]> {
    const actor = opts.as ? this.clinicianActor(opts.as) : this.systemActor();
    const env = await this.call(this.cfg.endpoints.repository, ACTION.iti43, retrieveRequest(docs), actor, opts.patientId);
    const res = readRetrieveResponse(this.expectPayload(env, 'RetrieveDocumentSetResponse'), env.attachments);
    this.throwOnFailure(res);
    return res.documents;
  }

  // ---- internals ----

  private authorActor(p: Professional): VihfActor {
    return {
      nameId: p.id.extension ?? p.id.root,
      displayName: displayName(p),
      roles: [PROFESSION_MEDECIN, ...(p.role ? [p.role] : [])],
      sector: this.cfg.vihf.sector,
      authMode: 'INDIRECTE',
    };
  }

  private systemActor(): VihfActor {
    const a = this.cfg.submitter.defaultAuthor;
    if (a) return this.authorActor(a);
    return { nameId: this.cfg.vihf.finess, displayName: this.cfg.vihf.lpsName, roles: [PROFESSION_MEDECIN], sector: this.cfg.vihf.sector, authMode: 'INDIRECTE' };
  }

  private clinicianActor(c: ClinicianIdentity): VihfActor {
    return {
      nameId: c.rpps,
      displayName: c.displayName,
      roles: c.roles.length ? c.roles : [PROFESSION_MEDECIN],
      sector: c.sector ?? this.cfg.vihf.sector,
      authMode: c.authMode ?? 'AIR',
      purposeOfUse: c.purposeOfUse,
    };
  }

  private async call(
    url: string,
    action: string,
    body: string,
    actor: VihfActor,
    patientId: string | undefined,
    attachments?: MimePart[],
  ): Promise<ParsedEnvelope & { attachments: Map<string, MimePart> }> {
    const v = this.cfg.vihf;
    const assertion = buildVihf({
      system: {
        signingCertPem: v.signingCert,
        signingKeyPem: v.signingKey,
        issuer: v.issuer,
        structureId: v.finess,
        lpsName: v.lpsName,
        lpsVersion: v.lpsVersion,
        lpsId: v.lpsId,
        lpsHomologationId: v.lpsHomologationId,
      },
      actor,
      patientId,
    });
    const envelope = buildEnvelope({ action, to: url, assertion, body });
    let payload: Buffer;
    let contentType: string;
    if (attachments) {
      const m = encodeMtom(envelope, attachments, action);
      payload = m.body;
      contentType = m.contentType;
    } else {
      payload = Buffer.from(envelope, 'utf8');
      contentType = `application/soap+xml; charset=UTF-8; action="${action}"`;
    }
    let status: number;
    let resCt: string;
    let resBody: Buffer;
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': contentType },
        body: payload,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.statusCode;
      resCt = String(res.headers['content-type'] ?? '');
      resBody = Buffer.from(await res.body.arrayBuffer());
    } catch (e) {
      throw new DmpError({ code: 'transport', message: `DMP unreachable: ${(e as Error).message}`, retryable: true, cause: e });
    }
    let env: ParsedEnvelope & { attachments: Map<string, MimePart> };
    try {
      const msg = decodeSoapMessage(resBody, resCt);
      env = { ...parseEnvelope(msg.envelope), attachments: msg.attachments };
    } catch (e) {
      throw new DmpError({
        code: status >= 500 ? 'transport' : 'protocol',
        message: `unreadable DMP answer (HTTP ${status}): ${(e as Error).message}`,
        retryable: status >= 500 || status === 429,
        httpStatus: status,
      });
    }
    const fault = readFault(env.payload);
    if (fault) {
      const receiver = /Receiver$/.test(fault.code);
      throw new DmpError({ code: fault.subcode || fault.code || 'soap:Fault', message: fault.reason, retryable: receiver, httpStatus: status });
    }
    if (status >= 400) throw new DmpError({ code: status >= 500 ? 'transport' : 'protocol', message: `HTTP ${status}`, retryable: status >= 500, httpStatus: status });
    return env;
  }

  private expectPayload(env: ParsedEnvelope, localName: string) {
    if (!env.payload || env.payload.localName !== localName) {
      throw new DmpError({ code: 'protocol', message: `expected ${localName}, got ${env.payload?.localName ?? 'an empty body'}`, retryable: false });
    }
    return env.payload;
  }

  private throwOnFailure(r: { status: string; errors: { errorCode: string; codeContext: string; severity: string; location?: string }[] }): void {
    if (r.status === 'Success') return;
    const first = r.errors[0];
    const code = first?.errorCode || 'XDSRegistryError';
    throw new DmpError({
      code,
      message: first ? `${code}: ${first.codeContext}` : `DMP answered ${r.status}`,
      retryable: isRetryableXdsCode(code),
      details: r.errors,
    });
  }
}

