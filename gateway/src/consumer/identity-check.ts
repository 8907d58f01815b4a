// The INS identity rules applied to what the consumer shows: the KOS must be the XDS entry's document
// and name the patient whose INS was searched (else the study is refused), and the call's strict
// traits (birth name, first given name, birth date, sex) must be those of the KOS patient module
// (else the viewer shows a warning naming the traits that differ). Pure functions, no I/O.
import type { ParsedKos } from '../dicom/kos.js';
import type { IdentityWarning, SessionPatient } from './session-document.js';

/** Why a KOS cannot be shown for this search, in words the clinician reads; undefined when it can. */
export function kosIdentityRefusal(kos: ParsedKos, entryUniqueId: string, ins: { value: string; oid: string }): string | undefined {
  if (kos.sopInstanceUid !== entryUniqueId) {
    return "Incohérence d'identité : le document de référence (KOS) ne porte pas l'identifiant de l'entrée DMP qui l'annonce. Les images ne sont pas affichées.";
  }
  if (kos.patient.id !== ins.value || kos.patient.issuerOid !== ins.oid) {
    return "Incohérence d'identité : le document de référence (KOS) désigne un autre patient que l'INS recherché. Les images ne sont pas affichées.";
  }
  return undefined;
}

/** Upper case, no accents, hyphens and apostrophes as spaces: names compared as the INS rules do. */
export function normalizeName(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toUpperCase().replace(/[^A-Z]+/g, ' ').trim();
}

const LABELS: Record<IdentityWarning['trait'], string> = {
  birthName: 'nom de naissance',
  firstGivenName: 'premier prénom',
  birthDate: 'date de naissance',
  sex: 'sexe',
};

/**
 * The strict traits of the call that differ from the KOS patient module. A trait the call does not
 * give (a report link) or the KOS does not carry is not compared.
 */
export function traitDifferences(call: Pick<SessionPatient, 'birthName' | 'givenNames' | 'birthDate' | 'sex'>, kos: ParsedKos['patient']): IdentityWarning[] {
  const [family = '', given = ''] = (kos.name ?? '').split('^');
  const shown = {
    birthName: family.trim(),
    firstGivenName: given.trim().split(/\s+/)[0] ?? '',
    birthDate: (kos.birthDate ?? '').trim(),
    sex: (kos.sex ?? '').trim(),
  };
  const asked = {
    birthName: call.birthName,
    firstGivenName: call.givenNames[0] ?? '',
    birthDate: call.birthDate,
    sex: call.sex === 'U' ? '' : call.sex,
  };
  const out: IdentityWarning[] = [];
  for (const trait of ['birthName', 'firstGivenName', 'birthDate', 'sex'] as const) {
    const a = asked[trait];
    const b = shown[trait];
    if (!a || !b || (trait === 'sex' && !['M', 'F'].includes(b))) continue;
    const same = trait === 'birthName' || trait === 'firstGivenName' ? normalizeName(a) === normalizeName(b) : a === b;
    if (!same) out.push({ trait, label: LABELS[trait], call: a, images: b });
  }
  return out;
}

/** Warnings of `more` for traits (and values) not already in `known`, added to it. */
export function mergeWarnings(known: IdentityWarning[], more: IdentityWarning[]): IdentityWarning[] {
  const out = [...known];
  for (const w of more) if (!out.some((k) => k.trait === w.trait && k.images === w.images)) out.push(w);
  return out;
}
