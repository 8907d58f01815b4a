// HL7 v2 data types as XDS metadata writes them (XCN, XON, CX, DTM), from the publication record.
import type { Code, Professional, Patient, InstanceIdentifier } from '../cda/types.js';

export const RPPS_OID = '1.2.250.1.71.4.2.1';

/** XCN for authorPerson / legalAuthenticator: `id^family^given^^^prefix^^^&oid&ISO^D^^^IDNPS`. */
export function xcn(p: Professional): string {
  return [
    p.id.extension ?? p.id.root,
    p.family ?? '',
    p.given ?? '',
    '',
    '',
    p.prefix ?? '',
    '',
    '',
    p.id.extension ? `&${p.id.root}&ISO` : '',
    'D',
    '',
    '',
    'IDNPS',
  ].join('^');
}

/** XON for authorInstitution: `name^^^^^&oid&ISO^IDNST^^^id`. */
export function xon(org: { id?: InstanceIdentifier; name?: string }): string {
  const name = org.name ?? '';
  if (!org.id) return name;
  return `${name}^^^^^&${org.id.root}&ISO^IDNST^^^${org.id.extension ?? org.id.root}`;
}

/** CX with an ISO assigning authority: `value^^^&oid&ISO^type`. */
export function cx(value: string, oid: string, type: string): string {
  return `${value}^^^&${oid}&ISO^${type}`;
}

/** The INS as XDS patientId. */
export function insPatientId(p: Patient): string {
  return cx(p.ins.value, p.ins.oid, 'NH');
}

/** CE as XDS authorSpecialty/authorRole strings: `code^display^oid`. */
export function ce(c: Code): string {
  return `${c.code}^${c.displayName ?? ''}^${c.codeSystem}`;
}

/** HL7 TS (may carry a zone, e.g. 20231114144457+0100) → XDS DTM in UTC, to the precision given. */
export function toDtm(ts: string): string {
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$/.exec(ts.trim());
  if (!m) throw new RangeError(`not an HL7 timestamp: ${ts}`);
  const [, y, mo, d, h, mi, s, tz] = m;
  if (!tz || !h) return [y, mo, d, h, mi, s].filter(Boolean).join('');
  const sign = tz[0] === '-' ? -1 : 1;
  const offMin = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(3, 5)));
  const utc = new Date(Date.UTC(+y, +(mo ?? 1) - 1, +(d ?? 1), +h, +(mi ?? 0), +(s ?? 0)) - offMin * 60_000);
  const full = dtmOf(utc);
  return full.slice(0, 8 + [h, mi, s].filter(Boolean).length * 2);
}

export function dtmOf(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** XDS uniqueId of a CDA document: `root^extension` (or root alone). */
export function cdaUniqueId(id: InstanceIdentifier): string {
  return id.extension ? `${id.root}^${id.extension}` : id.root;
}
