// From a patient's INS to the studies the viewer shows: ITI-18 FindDocuments (with the call's
// filters), ITI-43 of every KOS and report found, each KOS parsed (with the module that builds them)
// into studies → series → instances with their source box; each study paired with its report.
import type { SessionStudyRef } from './session-document.js';
import { createHash } from 'node:crypto';
import type { DmpClient, ClinicianIdentity } from '../dmp/client.js';
import { DmpError } from '../dmp/errors.js';
import type { DocumentEntry, RetrievedDocument } from '../dmp/xds-query.js';
import { VALUE_SET_OID } from '../dmp/xds-constants.js';
import { parseKos, KosParseError, type ParsedKos } from '../dicom/kos.js';
import { reportBody } from '../cda/read.js';
import { findDocumentsQuery, type ContextualCall } from './contextual-call.js';
import { kosIdentityRefusal, traitDifferences } from './identity-check.js';

export interface SessionSeries {
  seriesUid: string;
  /** WADO-RS URL of the series on its source box (KOS RetrieveURL) */
  retrieveUrl?: string;
  instances: { sopClassUid: string; sopInstanceUid: string }[];
}

/** A study as the consumer keeps it in a viewer session: what the viewer is shown, and where to fetch it. */
export interface SessionStudy extends Omit<SessionStudyRef, 'report'> {
  /** report document id (its XDS uniqueId), served under the session */
  reportId?: string;
  reportMediaType?: 'application/pdf' | 'text/plain' | 'text/html';
  /** the source box, as the cache keys it: RetrieveLocationUID, else the Retrieve URL origin */
  source: string;
  /** DICOMweb root on the source box (…/dicom-web), from the Retrieve URLs */
  sourceRoot?: string;
  series: SessionSeries[];
  /** the KOS patient's identifiers (PatientID, then OtherPatientIDs): every retrieved instance must carry one */
  patientIds: string[];
  /** why the study cannot be fetched, in plain words (status unreachable, withdrawn, refused) */
  problem?: string;
}

export interface ReportDoc {
  id: string;
  mediaType: 'application/pdf' | 'text/plain' | 'text/html';
  data: Buffer;
}

export interface PatientFromKos {
  name?: string;
  birthDate?: string;
  sex?: string;
}

export interface SearchResult {
  studies: SessionStudy[];
  reports: ReportDoc[];
  /** patient traits from the first KOS (the report link has no call context) */
  patientFromKos?: PatientFromKos;
}

export interface SearchOptions {
  /** is this retrieve URL a listed box's peer API (scheme, host, port, /dicom-web/ path)? */
  isHostAllowed: (url: string) => boolean;
  /** downloads the allow-list again (rate-limited) when a KOS names a host it does not list */
  refreshAllowList?: () => Promise<void>;
}

/** A DMP failure, in words a clinician understands (French, like the viewer). */
export class DmpSearchError extends Error {
  constructor(readonly userMessage: string, readonly status: number, options?: { cause?: unknown }) {
    super(userMessage, options);
    this.name = 'DmpSearchError';
  }
}

export function plainDmpMessage(e: unknown): DmpSearchError {
  if (e instanceof DmpError) {
    if (e.code === 'transport') return new DmpSearchError('Le DMP est injoignable pour le moment. Réessayez dans quelques minutes.', 502, { cause: e });
    if (/XDSUnknownPatientId/.test(e.code)) return new DmpSearchError("Ce patient n'a pas de dossier dans le DMP.", 404, { cause: e });
    if (/PatientIdDoesNotMatch/.test(e.code)) return new DmpSearchError("Le DMP a refusé la recherche : l'identité du patient ne correspond pas.", 502, { cause: e });
    if (/Busy|OutOfResources|NotAvailable/.test(e.code)) return new DmpSearchError('Le DMP est surchargé. Réessayez dans quelques minutes.', 503, { cause: e });
    if (/Sender|Security|Vihf|Authorization|Access/i.test(e.code)) return new DmpSearchError("Le DMP a refusé l'accès à ce dossier pour votre compte.", 403, { cause: e });
    return new DmpSearchError(`Le DMP a répondu par une erreur (${e.code}).`, 502, { cause: e });
  }
  return new DmpSearchError('La recherche dans le DMP a échoué.', 502, { cause: e });
}

const KOS_TYPE = 'IMG-KOS';
const isKos = (d: DocumentEntry) => d.typeCode?.code === KOS_TYPE || d.mimeType === 'application/dicom';
const isReport = (d: DocumentEntry) => !isKos(d) && (d.mimeType === 'text/xml' || d.mimeType === 'application/xml') && d.classCode?.code === '10';

/** Study UIDs named in an entry's referenceIdList. */
function studyUidsOf(d: DocumentEntry): string[] {
  return d.referenceIds.filter((r) => r.endsWith('urn:ihe:iti:xds:2016:studyInstanceUID')).map((r) => r.split('^')[0]);
}

function centreOf(institution: string | undefined): string {
  return institution?.split('^')[0] || '';
}

export async function searchPatientStudies(dmp: DmpClient, call: ContextualCall, as: ClinicianIdentity, opts: SearchOptions): Promise<SearchResult> {
  let entries: DocumentEntry[];
  const q = findDocumentsQuery(call);
  try {
    entries = await dmp.findDocuments(q, as);
  } catch (e) {
    throw plainDmpMessage(e);
  }
  const koses = entries.filter(isKos);
  const reports = entries.filter(isReport);
  if (koses.length === 0) return { studies: [], reports: [] };

  // ITI-43, grouped by repository
  const wanted = [...koses, ...reports].filter((d) => d.repositoryUniqueId);
  const byRepo = new Map<string, DocumentEntry[]>();
  for (const d of wanted) byRepo.set(d.repositoryUniqueId!, [...(byRepo.get(d.repositoryUniqueId!) ?? []), d]);
  const docs = new Map<string, RetrievedDocument>();
  try {
    for (const [repo, ds] of byRepo) {
      const got = await dmp.retrieveDocuments(ds.map((d) => ({ repositoryUniqueId: repo, documentUniqueId: d.uniqueId })), { as, patientId: q.patientId });
      for (const g of got) docs.set(g.documentUniqueId, g);
    }
  } catch (e) {
    throw plainDmpMessage(e);
  }

  const reportByStudy = new Map<string, { entry: DocumentEntry; doc: ReportDoc }>();
  const reportDocs: ReportDoc[] = [];
  for (const r of reports) {
    const got = docs.get(r.uniqueId);
    if (!got) continue;
    let doc: ReportDoc;
    try {
      const body = reportBody(got.content);
      doc = 'text' in body
        ? { id: r.uniqueId, mediaType: 'text/plain', data: Buffer.from(body.text, 'utf8') }
        : { id: r.uniqueId, mediaType: body.mediaType === 'application/pdf' || body.mediaType === 'text/html' ? body.mediaType : 'text/plain', data: body.data };
    } catch {
      continue; // an unreadable report must not hide the images
    }
    reportDocs.push(doc);
    for (const uid of studyUidsOf(r)) reportByStudy.set(uid, { entry: r, doc });
  }

  const studies: SessionStudy[] = [];
  let patientFromKos: PatientFromKos | undefined;
  for (const k of koses) {
    const got = docs.get(k.uniqueId);
    if (!got) continue;
    let kos: ParsedKos;
    try {
      kos = parseKos(got.content);
    } catch (e) {
      if (e instanceof KosParseError) continue;
      throw e;
    }
    if (kos.isRejectionNote) continue;
    // a KOS that is not the entry's document, or names another patient, shows nothing (and lends no traits)
    const refusal = kosIdentityRefusal(kos, k.uniqueId, call.patient.ins);
    const warnings = refusal ? [] : traitDifferences(call.patient, kos.patient);
    if (!refusal) patientFromKos ??= { name: kos.patient.name, birthDate: kos.patient.birthDate, sex: kos.patient.sex };
    const modalities = k.eventCodes.filter((c) => c.scheme === VALUE_SET_OID.modality).map((c) => c.code);
    for (const st of kos.studies) {
      const report = reportByStudy.get(st.studyUid);
      const start = k.serviceStartTime ?? '';
      const first = st.series.find((s) => s.retrieveUrl);
      const study: SessionStudy = {
        studyUid: st.studyUid,
        date: start.slice(0, 8),
        ...(start.length >= 12 ? { time: start.slice(8, 14) } : {}),
        modalities: [...new Set(modalities)],
        description: kos.description ?? report?.entry.title ?? k.title ?? '',
        sourceCentre: centreOf(k.authorInstitution) || centreOf(report?.entry.authorInstitution),
        ...(st.accession?.value ? { accessionNumber: st.accession.value } : kos.accessionNumber ? { accessionNumber: kos.accessionNumber } : {}),
        kosUid: kos.sopInstanceUid,
        current: false,
        status: 'available',
        ...(report ? { reportId: report.doc.id, reportMediaType: report.doc.mediaType } : {}),
        source: first?.retrieveLocationUid ?? originOf(first?.retrieveUrl) ?? 'unknown',
        series: st.series.map((s) => ({ seriesUid: s.seriesUid, ...(s.retrieveUrl ? { retrieveUrl: s.retrieveUrl } : {}), instances: s.instances })),
        patientIds: [kos.patient.id, ...kos.patient.otherIds.map((o) => o.id)].filter(Boolean),
        ...(warnings.length ? { identityWarnings: warnings } : {}),
      };
      const root = first?.retrieveUrl ? dicomWebRootOf(first.retrieveUrl) : undefined;
      if (root) study.sourceRoot = root;
      const unreachable = unreachableReason(study, opts);
      if (refusal) {
        study.status = 'refused';
        study.problem = refusal;
      } else if (unreachable) {
        study.status = 'unreachable';
        study.problem = unreachable;
      }
      studies.push(study);
    }
  }
  // a source box approved since the list in use was made: download the list once more, then judge again
  if (opts.refreshAllowList && studies.some((s) => s.problem === NOT_A_MEMBER)) {
    await opts.refreshAllowList();
    for (const s of studies) {
      if (s.status !== 'unreachable' || s.problem !== NOT_A_MEMBER) continue;
      const still = unreachableReason(s, opts);
      if (still) s.problem = still;
      else { s.status = 'available'; delete s.problem; }
    }
  }
  markCurrent(studies, call);
  studies.sort((a, b) => Number(b.current) - Number(a.current) || b.date.localeCompare(a.date));
  return { studies, reports: reportDocs, ...(patientFromKos ? { patientFromKos } : {}) };
}

function originOf(url: string | undefined): string | undefined {
  try { return url ? new URL(url).origin : undefined; } catch { return undefined; }
}

/** `https://host/x/dicom-web/studies/…` → `https://host/x/dicom-web`. */
export function dicomWebRootOf(retrieveUrl: string): string | undefined {
  const i = retrieveUrl.indexOf('/studies/');
  return i > 0 ? retrieveUrl.slice(0, i) : undefined;
}

const NOT_A_MEMBER = "Les images sont sur un serveur qui n'est pas membre du réseau DRIM-M : elles ne seront pas demandées.";

function unreachableReason(s: SessionStudy, opts: SearchOptions): string | undefined {
  if (!s.sourceRoot || s.series.some((se) => !se.retrieveUrl)) return "Le document de référence de l'examen n'indique pas où trouver les images.";
  for (const se of s.series) {
    try {
      const u = new URL(se.retrieveUrl!);
      if (u.protocol !== 'https:') return "Les images sont annoncées sur un serveur non sécurisé : elles ne seront pas demandées.";
    } catch {
      return "L'adresse des images est illisible.";
    }
    // the whole URL is judged (scheme, host, port, path), as the peer client will judge it
    if (!opts.isHostAllowed(se.retrieveUrl!)) return NOT_A_MEMBER;
  }
  return undefined;
}

/** The study the call names (UID or accession) is current; without one, the most recent. */
function markCurrent(studies: SessionStudy[], call: ContextualCall): void {
  const f = call.filters;
  let hit = false;
  for (const s of studies) {
    if ((f.studyInstanceUid && s.studyUid === f.studyInstanceUid) || (!f.studyInstanceUid && f.accessionNumber && s.accessionNumber === f.accessionNumber)) {
      s.current = true;
      hit = true;
    }
  }
  if (!hit && studies.length) {
    const latest = [...studies].sort((a, b) => b.date.localeCompare(a.date))[0];
    latest.current = true;
  }
}

/** A short stable id for a report document inside a session URL. */
export function reportKey(uniqueId: string): string {
  return createHash('sha256').update(uniqueId).digest('base64url').slice(0, 22);
}
