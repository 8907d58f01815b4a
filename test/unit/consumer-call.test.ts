// Contextual call parsing (DRIM-M.md §5): case-sensitive names, every refusal names its field.
import t from 'tap';
import { parseContextualCall, findDocumentsQuery, insKeyIsValid, CallFieldError } from '../../gateway/src/consumer/contextual-call.js';

const form = (over: Record<string, string | undefined> = {}) => Object.fromEntries(Object.entries({
  'Patient.identifier.value': '279035121518989', 'Patient.identifier.system': '1.2.250.1.213.1.4.10',
  'Patient.name.family': 'PAT-TROIS', 'Patient.name.given': 'DOMINIQUE', 'Patient.gender': 'female',
  'Patient.birthDate': '1979-03-28', 'Address.district': '75107', InformationEtOppositionConsultation: 'true',
  PatientID: '1234567890121', PatientIDIssuer: '1.2.3.4.567.8.9.10', ...over,
}).filter(([, v]) => v !== undefined));

const refusal = (f: Record<string, unknown>) => {
  try { parseContextualCall(f); return undefined; } catch (e) { return e as CallFieldError; }
};

t.test('a complete call', async (t) => {
  const c = parseContextualCall(form({ Modality: 'MG', StudyDate: '20240101-20241231', AnatomicRegion: 'T-04000', StudyInstanceUID: '1.2.3.4' }));
  t.match(c.patient, { birthName: 'PAT-TROIS', givenNames: ['DOMINIQUE'], birthDate: '19790328', sex: 'F', birthPlace: '75107', ins: { value: '279035121518989', oid: '1.2.250.1.213.1.4.10' }, ipp: '1234567890121' });
  t.same(c.filters.studyDate, { from: '20240101', to: '20241231' });
  const q = findDocumentsQuery(c);
  t.equal(q.patientId, '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH');
  t.same(q.modalities, ['MG']);
  t.equal(q.serviceStartFrom, '20240101');
  t.equal(q.serviceStartTo, '20250101', 'the exclusive upper bound is the next day');
  t.same(q.eventCodes, [{ code: 'T-04000', scheme: '1.2.250.1.213.1.1.5.695' }]);
});

t.test('refusals name the field', async (t) => {
  for (const [f, field, status] of [
    [form({ PatientID: undefined }), 'PatientID', 400],
    [form({ 'Patient.name.given': '  ' }), 'Patient.name.given', 400],
    [{ ...form(), 'patient.name.family': 'X' }, 'patient.name.family', 400],
    [{ ...form(), Extra: '1' }, 'Extra', 400],
    [form({ 'Patient.identifier.value': '279035121518988' }), 'Patient.identifier.value', 400],
    [form({ 'Patient.identifier.system': '1.2.3' }), 'Patient.identifier.system', 400],
    [form({ 'Patient.birthDate': '1979-02-30' }), 'Patient.birthDate', 400],
    [form({ 'Patient.gender': 'x' }), 'Patient.gender', 400],
    [form({ InformationEtOppositionConsultation: 'false' }), 'InformationEtOppositionConsultation', 403],
    [form({ StudyInstanceUID: 'abc' }), 'StudyInstanceUID', 400],
    [form({ StudyDate: 'yesterday' }), 'StudyDate', 400],
    [{ ...form(), PatientID: ['a', 'b'] }, 'PatientID', 400],
  ] as const) {
    const e = refusal(f as Record<string, unknown>);
    t.ok(e instanceof CallFieldError, `${field} refused`);
    t.equal(e?.field, field);
    t.equal(e?.status, status);
  }
  t.ok(insKeyIsValid('279035121518989'));
  t.notOk(insKeyIsValid('27903512151898'));
});
