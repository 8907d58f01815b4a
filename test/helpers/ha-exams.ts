// What users do to a multi-instance centre (ha-cluster.ts), shared by the HA test and the scale-out
// bench: exams whose reports the RIS sends over MLLP until acknowledged, the DMP's copy of what was
// published, and a clinician (a browser tab) logged in at PSC with a viewer session open on an exam.
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import type { Cluster } from './ha-cluster.js';
import { sendHl7 } from './publication-env.js';
import { browse, pscLogin } from './browser.js';
import { CookieJar } from './cookie-jar.js';
import { makeMgStudy, type MgStudy, type MgStudyOptions } from '../../sandbox/demo-data/mg-study.js';
import { nirWithKey } from '../../sandbox/demo-data/catalogue.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { readInfo } from '../../gateway/src/dicom/part10.js';

export interface Exam { ins: string; ipp: string; study: MgStudy; report: ReportInput; message: string }

/** Exam `k` of a run: its own patient (DUPONT MARIE ANNE, born 1979-03-12), MG study and ORU^R01. */
export function makeExam(k: number, size: MgStudyOptions['size'] = 'small', run = 'HA'): Exam {
  const ins = nirWithKey(`2790375${String(115000 + k).padStart(6, '0')}`);
  const ipp = `IPP-${run}-${k}`;
  const study = makeMgStudy({ patientId: ipp, patientName: 'DUPONT^MARIE ANNE', birthDate: '19790312', sex: 'F', accession: `ACC-${run}-${k}`, seed: 300 + k, size });
  const report: ReportInput = {
    patient: { ins, ipp, birthName: 'DUPONT', givenNames: ['MARIE', 'ANNE'], birthDate: '19790312', sex: 'F' },
    studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: `ACC-${run}-${k}`, modality: 'MG', date: '20240115', description: 'MAMMOGRAPHIE' }],
    setId: `1.2.250.1.999.1.1.77.${k}`,
  };
  return { ins, ipp, study, report, message: oruMessage(buildReportCda(report), report, { controlId: `${run}-${k}` }) };
}

export const seriesOf = (e: Exam): string => readInfo(e.study.files[0].part10).seriesInstanceUid;

/** KOS (Part 10 bytes) and CDA report documents the DMP holds for the patient (by XDS typeCode). */
export function dmpDocuments(c: Cluster, ins: string): { kos: Buffer[]; reports: number } {
  const rows = c.dmp.sim.db.prepare('SELECT type_code, content FROM documents WHERE patient_id LIKE ?').all(`${ins}^%`) as { type_code: string; content: Buffer }[];
  return { kos: rows.filter((r) => r.type_code.startsWith('IMG-KOS|')).map((r) => r.content), reports: rows.filter((r) => r.type_code.startsWith('18748-4|')).length };
}

/** The UID of the exam's KOS, as the DMP holds it (what a consumer box sends back to the source). */
export const kosUidOf = (c: Cluster, e: Exam): string => readInfo(dmpDocuments(c, e.ins).kos[0]).sopInstanceUid;

/** Sends the report as a RIS does: again until it is acknowledged (a connection cut by a crash is retried). */
export async function sendUntilAcked(c: Cluster, e: Exam): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      const ack = await sendHl7(c.hl7Port, e.message);
      if (ack.code === 'AA') return;
      last = new Error(`${ack.code} ${ack.text ?? ''} ${ack.error ?? ''}`);
    } catch (err) { last = err; }
  }
  throw new Error(`report ${e.report.setId} never acknowledged: ${last}`);
}

/** The contextual-call form for the exam's patient (DRIM-M.md §5 names). */
export const callForm = (e: Exam): Record<string, string> => ({
  'Patient.identifier.value': e.ins, 'Patient.identifier.system': '1.2.250.1.213.1.4.10',
  'Patient.name.family': 'DUPONT', 'Patient.name.given': 'MARIE ANNE', 'Patient.gender': 'female', 'Patient.birthDate': '1979-03-12',
  'Address.district': '75115', InformationEtOppositionConsultation: 'true', PatientID: e.ipp, PatientIDIssuer: '1.2.3.4.567.8.9.10',
});

export interface Tab { jar: CookieJar; tab: Agent; session: string; cookie(): string }

/**
 * A browser tab on the centre's public user address: `connections` keep-alive connections (1, like
 * one tab), logged in at PSC, with a viewer session opened by a contextual call for `e`.
 */
export async function clinicianWithSession(c: Cluster, e: Exam, connections = 1): Promise<Tab> {
  const tab = new Agent({ connect: { ca: readFileSync(c.pki.ca.cert), servername: 'localhost' }, connections });
  const jar = new CookieJar();
  await pscLogin(jar, tab, c.userUrl, c.psc.issuer, c.psc.clinicians[0].rpps);
  const call = await browse(jar, tab, `${c.userUrl}/contextual-call`, { method: 'POST', form: callForm(e), origin: c.userUrl }, (u) => u.includes('/viewer/'));
  const session = new URL(call.url).searchParams.get('session');
  if (!session) throw new Error(`contextual call did not open a viewer session: ${call.status} ${call.url} ${call.body.slice(0, 300)}`);
  return { jar, tab, session, cookie: () => jar.header(c.userUrl) };
}
