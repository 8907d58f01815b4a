// From a RIS message to a durable job: what `handleHl7` awaits before it answers AA. Anything the box
// can tell is wrong before acknowledging becomes an Hl7Rejection (NACK) and no job is stored.
import type { PublicationMessage } from '../../hl7/publication-message.js';
import { Hl7Rejection } from '../../hl7/rejection.js';
import { isValidUid } from '../../dicom/uid.js';
import type { PublicationRecord } from '../../cda/types.js';
import { setKey, type PublicationRepository } from './repository.js';

export interface IntakeResult {
  jobId?: number;
  created: boolean;
  note?: string;
}

/** The same report: the same CDA bytes and the same HL7 flags (DESTDMP, masking). */
function sameReport(a: PublicationRecord, b: PublicationRecord): boolean {
  const flags = (r: PublicationRecord) => JSON.stringify(Object.entries(r.flags).sort(([x], [y]) => x.localeCompare(y)));
  return a.cda.equals(b.cda) && flags(a) === flags(b);
}

export async function acceptPublicationMessage(repo: PublicationRepository, msg: PublicationMessage): Promise<IntakeResult> {
  if (msg.kind === 'publish') {
    const r = msg.record;
    if (r.studies.length === 0) {
      throw new Hl7Rejection({ errorCode: 101, location: 'OBX', message: 'The CDA report documents no study (documentationOf/serviceEvent/id with the Study Instance UID is missing).' });
    }
    for (const s of r.studies) {
      if (!isValidUid(s.studyInstanceUid)) {
        throw new Hl7Rejection({ errorCode: 102, location: 'OBX', message: `The study UID "${s.studyInstanceUid.slice(0, 70)}" in the CDA report is not a valid DICOM UID.` });
      }
    }
    const setId = setKey(r.setId);
    const notForDmp = r.flags.destDmp === false;
    const { job, created } = await repo.enqueue({
      kind: 'publish',
      idemKey: `publish|${setId}|${r.versionNumber}`,
      setId,
      documentId: setKey(r.documentId),
      version: r.versionNumber,
      controlId: msg.controlId,
      studyUids: r.studies.map((s) => s.studyInstanceUid),
      payload: { record: r },
      // DESTDMP=N: the RIS does not want this report in the DMP; recorded, nothing published
      ...(notForDmp ? { state: 'done' as const, note: 'DESTDMP=N: not for the DMP, nothing published' } : {}),
    });
    // same setId and version: an identical resend is a no-op; other content is a conflict, never dropped silently
    if (!created && job.payload.record && !sameReport(job.payload.record, r)) {
      throw new Hl7Rejection({
        errorCode: 205, location: 'OBX',
        message: `Version ${r.versionNumber} of report ${setId.slice(0, 64)} was already received with different content; ` +
          'a corrected report needs a new version number (and RPLC). This message was NOT accepted.',
      });
    }
    return { jobId: job.id, created };
  }

  if (msg.kind === 'depublish') {
    const docKey = msg.documentId ? setKey(msg.documentId) : undefined;
    const setId = msg.setId ? setKey(msg.setId) : (docKey ? await repo.setOfDocument(docKey) : undefined);
    if (!setId) {
      throw new Hl7Rejection({ errorCode: 103, location: 'OBX', message: 'The withdrawn report is unknown to this DRIMbox (no publication of that document): nothing to withdraw.' });
    }
    const { job, created } = await repo.enqueue({
      kind: 'withdraw',
      idemKey: `withdraw|${docKey ?? setId}`,
      setId,
      documentId: docKey,
      version: msg.record?.versionNumber,
      controlId: msg.controlId,
      studyUids: msg.record?.studies.map((s) => s.studyInstanceUid) ?? [],
      payload: { record: msg.record, documentId: docKey, reason: 'withdrawn by the RIS' },
    });
    return { jobId: job.id, created };
  }

  // OMI^O23: only a cancellation of an exam we published changes anything (its KOS is withdrawn)
  if (msg.cancelled && msg.studyInstanceUid) {
    const current = (await repo.kosForStudy(msg.studyInstanceUid)).filter((k) => k.status === 'current');
    // a cancellation naming another patient than the published one is an error, not a withdrawal
    if (msg.patientIns && current.some((k) => k.patientId !== msg.patientIns!.value)) {
      throw new Hl7Rejection({ errorCode: 103, location: 'PID^1^3', message: `The cancelled exam ${msg.studyInstanceUid.slice(0, 64)} was published for another patient (INS differs): nothing withdrawn.` });
    }
    let last: IntakeResult = { created: false, note: 'exam cancelled; nothing published for it' };
    for (const k of current) {
      const { job, created } = await repo.enqueue({
        kind: 'withdraw',
        idemKey: `cancel|${msg.controlId}|${k.setId}`,
        setId: k.setId,
        controlId: msg.controlId,
        studyUids: [msg.studyInstanceUid],
        payload: { reason: 'exam cancelled by the RIS (OMI^O23)' },
      });
      last = { jobId: job.id, created };
    }
    return last;
  }
  return { created: false, note: 'exam change noted; nothing to do' };
}
