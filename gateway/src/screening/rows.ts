// A batch's rows from a JSON body or a CSV upload, checked. Whole-file faults (wrong columns, too many
// rows, duplicates) throw an HttpProblem and nothing is created; a row's own fault (an INS whose key is
// wrong, a date that is not one) becomes that row's error, reported as a failed case. Pure: no I/O.
import { parse } from 'csv-parse/sync';
import { HttpProblem } from '../http/problem.js';
import { INS_OIDS, insKeyIsValid } from '../consumer/contextual-call.js';
import type { BatchRowInput } from './types.js';

export const MAX_ROWS = 10_000;
export const COLUMNS = ['ins', 'insOid', 'birthDate', 'sex', 'familyName', 'givenName', 'accessionNumber', 'studyUid', 'readerRpps'] as const;
const REQUIRED = ['ins', 'birthDate', 'sex'] as const;
export const DEFAULT_INS_OID = '1.2.250.1.213.1.4.8';

/** A checked row: the values to keep, and the French reason when the row cannot be prefetched. */
export interface CheckedRow extends BatchRowInput {
  insOid: string;
  error?: string;
}

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/;
const bad = (detail: string, status = 400, extra: Record<string, unknown> = {}) => new HttpProblem(status, 'Lot refusé', detail, extra);

/** UTF-8 when the bytes are valid UTF-8 (a BOM is dropped), else Latin-1 (Windows spreadsheets). */
export function decodeCsv(bytes: Buffer): { text: string; encoding: 'utf-8' | 'latin1' } {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return { text: text.replace(/^\uFEFF/, ''), encoding: 'utf-8' };
  } catch {
    return { text: bytes.toString('latin1'), encoding: 'latin1' };
  }
}

/** Rows of a CSV file: header row with the API's column names, `;` or `,` (whichever the header uses). */
export function csvRows(bytes: Buffer): BatchRowInput[] {
  const { text } = decodeCsv(bytes);
  const header = text.split(/\r?\n/, 1)[0] ?? '';
  const delimiter = (header.match(/;/g)?.length ?? 0) > (header.match(/,/g)?.length ?? 0) ? ';' : ',';
  let records: Record<string, string>[];
  try {
    records = parse(text, {
      columns: (names: string[]) => checkColumns(names.map((n) => n.trim())),
      delimiter, skip_empty_lines: true, trim: true, relax_column_count: false,
      // one row more than allowed is enough to refuse the file: the rest is not parsed
      to_line: MAX_ROWS + 2,
    }) as Record<string, string>[];
  } catch (e) {
    if (e instanceof HttpProblem) throw e;
    throw bad(`CSV illisible : ${(e as Error).message}`);
  }
  return records.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== ''))) as unknown as BatchRowInput[];
}

function checkColumns(names: string[]): string[] {
  const known = new Set<string>(COLUMNS);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length) throw bad(`colonne(s) inconnue(s) : ${unknown.join(', ')} (colonnes possibles : ${COLUMNS.join(', ')})`);
  const missing = REQUIRED.filter((n) => !names.includes(n));
  if (missing.length) throw bad(`colonne(s) obligatoire(s) absente(s) : ${missing.join(', ')}`);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length) throw bad(`colonne en double : ${twice.join(', ')}`);
  return names;
}

/** Rows of a JSON body (`rows: [...]`), shape-checked. */
export function jsonRows(rows: unknown): BatchRowInput[] {
  if (!Array.isArray(rows)) throw bad('rows : une liste de lignes est attendue');
  const known = new Set<string>(COLUMNS);
  return rows.map((r, i) => {
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw bad(`ligne ${i + 1} : un objet est attendu`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(r as Record<string, unknown>)) {
      if (!known.has(k)) throw bad(`ligne ${i + 1} : champ inconnu ${k.slice(0, 40)} (champs possibles : ${COLUMNS.join(', ')})`);
      if (v === undefined || v === null || v === '') continue;
      if (typeof v !== 'string') throw bad(`ligne ${i + 1} : ${k} doit être un texte`);
      out[k] = v.trim();
    }
    return out as unknown as BatchRowInput;
  });
}

/** Whole-file checks, then each row's own. */
export function checkRows(rows: BatchRowInput[]): CheckedRow[] {
  if (rows.length === 0) throw bad('le lot ne contient aucune ligne');
  if (rows.length > MAX_ROWS) throw bad(`le lot dépasse ${MAX_ROWS} lignes`, 413);
  for (const [i, r] of rows.entries()) {
    const missing = REQUIRED.filter((k) => !r[k]);
    if (missing.length) throw bad(`ligne ${i + 1} : ${missing.join(', ')} manquant(s)`);
  }
  const seen = new Map<string, number>();
  const dups: string[] = [];
  for (const [i, r] of rows.entries()) {
    const key = `${r.ins}|${r.studyUid ?? ''}|${r.accessionNumber ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined) dups.push(`ligne ${i + 1} = ligne ${first + 1}`);
    else seen.set(key, i);
  }
  if (dups.length) throw bad(`lignes en double (même INS et même examen) : ${dups.slice(0, 10).join(', ')}${dups.length > 10 ? ` et ${dups.length - 10} autre(s)` : ''}`);
  return rows.map(checkRow);
}

function checkRow(r: BatchRowInput): CheckedRow {
  const row: CheckedRow = {
    ins: r.ins.slice(0, 32), insOid: (r.insOid ?? DEFAULT_INS_OID).replace(/^urn:oid:/, '').slice(0, 64), birthDate: r.birthDate.slice(0, 10),
    sex: r.sex.toUpperCase().slice(0, 1),
    ...(r.familyName ? { familyName: r.familyName.slice(0, 80) } : {}), ...(r.givenName ? { givenName: r.givenName.slice(0, 80) } : {}),
    ...(r.accessionNumber ? { accessionNumber: r.accessionNumber.slice(0, 64) } : {}), ...(r.studyUid ? { studyUid: r.studyUid.slice(0, 64) } : {}),
    ...(r.readerRpps ? { readerRpps: r.readerRpps.slice(0, 20) } : {}),
  };
  const error = rowProblem(r);
  return error ? { ...row, error } : row;
}

function rowProblem(r: BatchRowInput): string | undefined {
  if (!/^\d{15}$/.test(r.ins)) return 'INS invalide : 15 chiffres attendus';
  if (!insKeyIsValid(r.ins)) return 'INS invalide : la clé de contrôle ne correspond pas au numéro';
  if (r.insOid && !INS_OIDS.has(r.insOid.replace(/^urn:oid:/, ''))) return "insOid : ce n'est pas un OID d'INS (1.2.250.1.213.1.4.8, .9 ou .10)";
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(r.birthDate);
  const d = m && new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  if (!m || !d || Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[3])) return 'date de naissance invalide : AAAAMMJJ attendu';
  if (!['F', 'M', 'U'].includes(r.sex.toUpperCase())) return 'sexe invalide : F, M ou U attendu';
  if (r.studyUid && (r.studyUid.length > 64 || !UID.test(r.studyUid))) return "studyUid : ce n'est pas un UID DICOM";
  if (r.readerRpps && !/^\d{11}$/.test(r.readerRpps)) return 'readerRpps : 11 chiffres attendus';
  return undefined;
}
