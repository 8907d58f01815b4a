// Screening batch rows (CSV encodings and delimiters, whole-file and per-row faults) and verdict checks.
import t from 'tap';
import { checkRows, csvRows, decodeCsv } from '../../gateway/src/screening/rows.js';
import { checkVerdict } from '../../gateway/src/screening/verdict.js';
import { HttpProblem } from '../../gateway/src/http/problem.js';
import { nirWithKey } from '../../sandbox/demo-data/catalogue.js';

const ins = nirWithKey('2640375123456');
/** the problem a check throws (undefined when it does not) */
const problemOf = (fn: () => unknown): HttpProblem | undefined => {
  try { fn(); } catch (e) { return e as HttpProblem; }
  return undefined;
};

t.test('CSV: UTF-8 or Latin-1, ";" or ","', async (t) => {
  const text = `ins;birthDate;sex;familyName\r\n${ins};19640312;F;LÉA\r\n`;
  t.equal(decodeCsv(Buffer.from(text, 'latin1')).encoding, 'latin1');
  t.equal(decodeCsv(Buffer.from(`\uFEFF${text}`, 'utf8')).encoding, 'utf-8');
  t.same(csvRows(Buffer.from(text, 'latin1')), [{ ins, birthDate: '19640312', sex: 'F', familyName: 'LÉA' }]);
  t.same(csvRows(Buffer.from(`\uFEFF${text}`, 'utf8')), csvRows(Buffer.from(text, 'latin1')), 'same rows from either encoding');
  t.same(csvRows(Buffer.from(`ins,birthDate,sex,familyName\n"${ins}",19640312,F,"DE LA TOUR, MARIE"\n`)), [{ ins, birthDate: '19640312', sex: 'F', familyName: 'DE LA TOUR, MARIE' }]);
  t.match(problemOf(() => csvRows(Buffer.from(`ins;birthDate\n${ins};19640312\n`))), { status: 400, detail: /obligatoire\(s\) absente\(s\) : sex/ });
  t.throws(() => csvRows(Buffer.from(`ins;birthDate;sex\n${ins};19640312\n`)), HttpProblem, 'a short line');
});

t.test('rows: a wrong INS key, a bad date, a bad sex are the row\'s faults; duplicates the file\'s', async (t) => {
  const wrongKey = `${ins.slice(0, 13)}${String((Number(ins.slice(13)) + 1) % 100).padStart(2, '0')}`;
  const rows = checkRows([
    { ins, birthDate: '19640312', sex: 'f' },
    { ins: wrongKey, birthDate: '19640312', sex: 'F', accessionNumber: 'A' },
    { ins, birthDate: '19640231', sex: 'F', accessionNumber: 'B' },
    { ins, birthDate: '19640312', sex: 'X', accessionNumber: 'C' },
  ]);
  t.same(rows.map((r) => r.error ?? 'ok'), ['ok', 'INS invalide : la clé de contrôle ne correspond pas au numéro', 'date de naissance invalide : AAAAMMJJ attendu', 'sexe invalide : F, M ou U attendu']);
  t.equal(rows[0].sex, 'F');
  t.equal(rows[0].insOid, '1.2.250.1.213.1.4.8', 'INS-NIR by default');
  t.match(problemOf(() => checkRows([{ ins, birthDate: '19640312', sex: 'F' }, { ins, birthDate: '19640312', sex: 'F' }])), { status: 400, detail: /ligne 2 = ligne 1/ });
  t.match(problemOf(() => checkRows([])), { status: 400 });
});

t.test('verdicts: outcome from quality and result; incomplete ones refused', async (t) => {
  const id = 'c0ffee00-0000-4000-8000-000000000001';
  t.equal(checkVerdict({ requestId: id, quality: 'adequate', result: 'normal', timeSpentMs: 1 }).outcome, 'normal');
  t.equal(checkVerdict({ requestId: id, quality: 'insufficient', viewsToRedo: ['R-CC', 'R-CC'], timeSpentMs: 1 }).viewsToRedo!.length, 1);
  t.match(checkVerdict({ requestId: id, quality: 'adequate', result: 'positive', left: { acr: 5, location: '11', signs: ['distortion'] }, timeSpentMs: 1 }), { outcome: 'positive', left: { acr: 5 } });
  t.match(problemOf(() => checkVerdict({ requestId: id, quality: 'insufficient', timeSpentMs: 1 })), { status: 400, detail: /viewsToRedo/ });
  t.match(problemOf(() => checkVerdict({ requestId: id, quality: 'adequate', timeSpentMs: 1 })), { detail: /result/ });
  t.match(problemOf(() => checkVerdict({ requestId: id, quality: 'adequate', result: 'positive', right: { acr: 2, location: 'QSE', signs: ['mass'] }, timeSpentMs: 1 })), { detail: /right.acr/ });
  t.match(problemOf(() => checkVerdict({ requestId: id, quality: 'adequate', result: 'positive', right: { acr: 4, location: '13', signs: ['mass'] }, timeSpentMs: 1 })), { detail: /location/ });
  t.match(problemOf(() => checkVerdict({ quality: 'adequate', result: 'normal', timeSpentMs: 1 })), { detail: /requestId/ });
});
