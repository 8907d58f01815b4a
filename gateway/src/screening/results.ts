// A batch's results for the CRCDC's screening software: one row per case (CSV, JSON), a FHIR-shaped
// DiagnosticReport per read case, and the readers' statistics. Pure builders.
import { stringify } from 'csv-stringify/sync';
import type { CheckedRow } from './rows.js';
import type { ScreeningBatchRow, ScreeningCaseRow } from './schema.js';
import type { BreastFinding, Case, Verdict } from './types.js';
import { caseView } from './views.js';

export interface ResultRow {
  batchId: string; batchName: string; position: number; caseId: string;
  ins: string; insOid: string; familyName: string; givenName: string; birthDate: string; sex: string;
  accessionNumber: string; studyUid: string; priorStudyUids: string; caseState: string; caseError: string;
  outcome: string; quality: string; viewsToRedo: string;
  rightAcr: string; rightLocation: string; rightSigns: string; leftAcr: string; leftLocation: string; leftSigns: string;
  comment: string; deferral: string; readerRpps: string; readerName: string; recordedAt: string; amendedAt: string; timeSpentMs: string;
}

const side = (f: BreastFinding | undefined) => [f ? String(f.acr) : '', f?.location ?? '', f?.signs.join(' ') ?? ''];

export function resultRows(b: ScreeningBatchRow, cases: ScreeningCaseRow[]): ResultRow[] {
  return cases.map((c) => {
    const v = caseView(c);
    const row = JSON.parse(c.row_json) as CheckedRow;
    const x = v.verdict;
    const [rightAcr, rightLocation, rightSigns] = side(x?.right);
    const [leftAcr, leftLocation, leftSigns] = side(x?.left);
    return {
      batchId: b.id, batchName: b.name, position: v.position, caseId: v.id,
      ins: row.ins, insOid: row.insOid, familyName: row.familyName ?? '', givenName: row.givenName ?? '', birthDate: row.birthDate, sex: row.sex,
      accessionNumber: v.accessionNumber ?? '', studyUid: v.studyUid ?? '', priorStudyUids: v.priorStudyUids.join(' '),
      caseState: v.state, caseError: v.error ?? '',
      outcome: x?.outcome ?? (v.deferral ? 'deferred' : ''), quality: x?.quality ?? '', viewsToRedo: x?.viewsToRedo?.join(' ') ?? '',
      rightAcr, rightLocation, rightSigns, leftAcr, leftLocation, leftSigns,
      comment: x?.comment ?? '', deferral: v.deferral ? `${v.deferral.reason}${v.deferral.comment ? `: ${v.deferral.comment}` : ''}` : '',
      readerRpps: x?.readerRpps ?? '', readerName: x?.readerName ?? '', recordedAt: x?.recordedAt ?? '', amendedAt: x?.amendedAt ?? '',
      timeSpentMs: x ? String(x.timeSpentMs) : '',
    };
  });
}

/** `;`-separated, UTF-8 with a BOM (what French spreadsheets open as is). */
export function resultsCsv(rows: ResultRow[]): string {
  return '\uFEFF' + stringify(rows, { header: true, delimiter: ';', columns: RESULT_COLUMNS, record_delimiter: 'windows' });
}

export const RESULT_COLUMNS: (keyof ResultRow)[] = ['batchId', 'batchName', 'position', 'caseId', 'ins', 'insOid', 'familyName', 'givenName', 'birthDate', 'sex',
  'accessionNumber', 'studyUid', 'priorStudyUids', 'caseState', 'caseError', 'outcome', 'quality', 'viewsToRedo', 'rightAcr', 'rightLocation', 'rightSigns',
  'leftAcr', 'leftLocation', 'leftSigns', 'comment', 'deferral', 'readerRpps', 'readerName', 'recordedAt', 'amendedAt', 'timeSpentMs'];

const SNOMED = 'http://snomed.info/sct';
const BREAST = { right: { code: '73056007', display: 'Right breast structure' }, left: { code: '80248007', display: 'Left breast structure' } };
const SIGN_TEXT: Record<string, string> = { mass: 'masse', calcifications: 'calcifications', distortion: 'distorsion architecturale', asymmetry: 'asymétrie' };
const OUTCOME_TEXT: Record<Verdict['outcome'], string> = {
  normal: 'L2 normale', positive: 'L2 positive : bilan de diagnostic différé', 'technical-recall': 'Qualité technique insuffisante : clichés à refaire',
};

/** The case's second reading as a FHIR R4 DiagnosticReport (findings as contained Observations). */
export function diagnosticReport(b: ScreeningBatchRow, c: ScreeningCaseRow): Record<string, unknown> | undefined {
  const v: Case = caseView(c);
  const x = v.verdict;
  if (!x) return undefined;
  const row = JSON.parse(c.row_json) as CheckedRow;
  const contained: Record<string, unknown>[] = [];
  for (const s of ['right', 'left'] as const) {
    const f = x[s];
    if (!f) continue;
    contained.push({
      resourceType: 'Observation', id: s, status: 'final',
      code: { text: 'Catégorie ACR (BI-RADS) de la lésion' },
      bodySite: { coding: [{ system: SNOMED, ...BREAST[s] }] },
      valueCodeableConcept: { coding: [{ system: 'urn:drimbox:screening:acr', code: String(f.acr) }], text: `ACR ${f.acr}` },
      component: [
        { code: { text: 'localisation' }, valueString: /^\d+$/.test(f.location) ? `${f.location} h` : f.location },
        ...f.signs.map((sg) => ({ code: { text: 'signe' }, valueCodeableConcept: { coding: [{ system: 'urn:drimbox:screening:sign', code: sg }], text: SIGN_TEXT[sg] } })),
      ],
    });
  }
  if (x.viewsToRedo?.length) {
    contained.push({ resourceType: 'Observation', id: 'views-to-redo', status: 'final', code: { text: 'Incidences à refaire' }, valueString: x.viewsToRedo.join(' ') });
  }
  return {
    resourceType: 'DiagnosticReport',
    id: v.id,
    meta: { profile: ['urn:drimbox:screening:second-reading:1'] },
    identifier: [{ system: `urn:drimbox:screening:batch:${b.id}`, value: v.id }],
    status: x.amendedAt ? 'amended' : 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '24606-6', display: 'MG Breast Screening' }], text: 'Deuxième lecture de mammographie de dépistage (L2)' },
    subject: { identifier: { system: `urn:oid:${row.insOid}`, value: row.ins }, display: [row.familyName, row.givenName].filter(Boolean).join(' ') || undefined },
    issued: x.amendedAt ?? x.recordedAt,
    performer: [{ identifier: { system: 'urn:oid:1.2.250.1.71.4.2.1', value: x.readerRpps }, display: x.readerName }],
    ...(v.studyUid ? { imagingStudy: [{ identifier: { system: 'urn:dicom:uid', value: `urn:oid:${v.studyUid}` } }] } : {}),
    ...(contained.length ? { contained, result: contained.map((o) => ({ reference: `#${o.id as string}` })) } : {}),
    conclusion: [OUTCOME_TEXT[x.outcome], x.comment].filter(Boolean).join(' — '),
    conclusionCode: [{ coding: [{ system: 'urn:drimbox:screening:outcome', code: x.outcome }], text: OUTCOME_TEXT[x.outcome] }],
    extension: [{ url: 'urn:drimbox:screening:time-spent-ms', valueInteger: x.timeSpentMs }],
  };
}

const median = (xs: number[]) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : Math.round((s[m - 1] + s[m]) / 2);
};

function summary(vs: Verdict[]) {
  const n = vs.length;
  return {
    casesRead: n,
    medianTimeMs: median(vs.map((v) => v.timeSpentMs)),
    positiveRate: n ? vs.filter((v) => v.outcome === 'positive').length / n : 0,
    technicalRecallRate: n ? vs.filter((v) => v.outcome === 'technical-recall').length / n : 0,
  };
}

export function stats(cases: ScreeningCaseRow[]) {
  const vs = cases.map((c) => c.verdict_json ? JSON.parse(c.verdict_json) as Verdict : undefined).filter((v): v is Verdict => Boolean(v));
  const byReader = new Map<string, Verdict[]>();
  for (const v of vs) byReader.set(v.readerRpps, [...(byReader.get(v.readerRpps) ?? []), v]);
  return {
    ...summary(vs),
    byReader: [...byReader.entries()].map(([rpps, list]) => ({ rpps, name: list[0].readerName, ...summary(list) })),
  };
}
