// Import reconciliation (IHE IRWF): an instance imported into the local PACS carries the local
// patient of the contextual call — the IPP and its issuer as Patient ID, the INS in Other Patient IDs
// Sequence with its issuer and qualifiers, the source centre's ID kept there too — and is refused
// when its identity traits (birth name, first given name, birth date, sex) are not the call's: two
// patients are never mixed in the local PACS. Pure.
import { INS_ISSUER_NAMES } from '../dicom/kos.js';
import { readPatientModule, rewritePatientIds, type OtherPatientId, type PatientHeader, type PatientIds } from '../dicom/patient-module.js';
import type { CallPatient } from './contextual-call.js';

/** The instances are not the call's patient (French detail for the clinician). */
export class ImportRefusedError extends Error {
  constructor(readonly detail: string) { super(detail); this.name = 'ImportRefusedError'; }
}

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;

/** Upper case, no accents, one space between words: "Le Goff-Hervé" and "LE GOFF HERVE" are the same. */
const norm = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toUpperCase().replace(/[^A-Z0-9]+/g, ' ').trim();
const SEX: Record<string, string> = { M: 'masculin', F: 'féminin', U: 'inconnu' };
const fmtDate = (d: string) => (/^\d{8}$/.test(d) ? `${d.slice(6, 8)}/${d.slice(4, 6)}/${d.slice(0, 4)}` : d || 'absente');

/** The traits that differ between the call and the instance's header, in French (empty: same patient). */
export function traitDifferences(call: CallPatient, h: PatientHeader): string[] {
  const out: string[] = [];
  if (norm(call.birthName) !== norm(h.familyName)) out.push(`nom de naissance (appel : ${call.birthName}, examen : ${h.familyName || 'absent'})`);
  const first = norm(call.givenNames[0] ?? '');
  const given = norm(h.givenNames);
  if (!first || (given !== first && !given.startsWith(`${first} `))) out.push(`premier prénom (appel : ${call.givenNames[0] ?? ''}, examen : ${h.givenNames || 'absent'})`);
  if (call.birthDate !== h.birthDate) out.push(`date de naissance (appel : ${fmtDate(call.birthDate)}, examen : ${fmtDate(h.birthDate)})`);
  const sex = h.sex === 'M' || h.sex === 'F' ? h.sex : 'U';
  if (call.sex !== sex) out.push(`sexe (appel : ${SEX[call.sex]}, examen : ${SEX[sex]})`);
  return out;
}

export function refusal(diffs: string[]): string {
  return `Import refusé : l’examen ne correspond pas au patient de l’appel contextuel — ${diffs.join(' ; ')}.`;
}

/** The identifiers an instance of this call's patient carries in the local PACS. */
export function localIds(call: CallPatient, h: PatientHeader): PatientIds {
  if (!call.ipp || !call.ippIssuer) throw new ImportRefusedError('Import refusé : l’appel contextuel ne donne pas l’IPP local (PatientID, PatientIDIssuer).');
  const ins: OtherPatientId = {
    value: call.ins.value, issuer: INS_ISSUER_NAMES[call.ins.oid] ?? call.ins.oid, type: 'TEXT',
    universalId: call.ins.oid, universalIdType: 'ISO', identifierTypeCode: 'INS',
  };
  const others: OtherPatientId[] = [ins];
  const same = (a: OtherPatientId, b: OtherPatientId) => a.value === b.value && (a.issuer ?? '') === (b.issuer ?? '');
  const local: OtherPatientId = { value: call.ipp, issuer: call.ippIssuer };
  const add = (o: OtherPatientId) => { if (!same(o, local) && !others.some((x) => same(x, o) || (x.value === o.value && o.value === ins.value))) others.push(o); };
  // the source centre's own ID, kept so the exam can be traced back to it
  if (h.patientId) add({ value: h.patientId, ...(h.issuer ? { issuer: h.issuer } : {}), type: 'TEXT', ...(h.issuerOid ? { universalId: h.issuerOid, universalIdType: 'ISO' } : {}) });
  for (const o of h.otherIds) add(o);
  return { patientId: call.ipp, issuer: call.ippIssuer, ...(OID.test(call.ippIssuer) ? { issuerOid: call.ippIssuer } : {}), otherIds: others };
}

/** Checks one Part 10 instance against the call and returns it with the local identifiers. */
export function reconcileInstance(part10: Buffer, call: CallPatient): Buffer {
  const h = readPatientModule(part10);
  const diffs = traitDifferences(call, h);
  if (diffs.length) throw new ImportRefusedError(refusal(diffs));
  return rewritePatientIds(part10, localIds(call, h));
}
