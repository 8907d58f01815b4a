// docs/operations.md gives the RIS a sample ORU^R01 and MDM^T02: with a real CDA in OBX-5 (the guide
// shortens the Base64), the box's own parser accepts both as publications.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parsePublicationMessage } from '../../gateway/src/hl7/publication-message.js';
import { buildReportCda } from '../../sandbox/demo-data/reports.js';

const guide = readFileSync('docs/operations.md', 'utf8');
const samples = [...guide.matchAll(/```\n(MSH\|[\s\S]+?)```/g)].map((m) => m[1].trim());
const cda = Buffer.from(buildReportCda({
  patient: { ins: '279035121518989', ipp: 'IPP101', birthName: 'PAT-TROIS', givenNames: ['DOMINIQUE'], birthDate: '19790328', sex: 'F' },
  studies: [{ studyInstanceUid: '1.2.250.1.999.1.1.5.1', accessionNumber: 'ACC-2024-0001', modality: 'MR', date: '20240115', description: 'IRM GENOU' }],
  setId: '1.2.250.1.999.1.1.77.1',
}), 'utf8').toString('base64');

t.equal(samples.length, 2, 'the guide has an ORU and an MDM sample');
for (const sample of samples) {
  const text = sample.replace(/PD94bWwgdmVyc2lvbj0iMS4wIi…/, cda).replace(/\n/g, '\r');
  const type = /^MSH\|(?:[^|]*\|){7}([^|]*)/.exec(text)?.[1];
  t.test(`the sample ${type}`, async (t) => {
    t.not(text, sample.replace(/\n/g, '\r'), 'its shortened Base64 is there to fill');
    const m = parsePublicationMessage(text);
    t.equal(m.kind, 'publish', 'is a publication');
    t.match(m, { record: { patient: { ins: { value: '279035121518989' } }, setId: { root: '1.2.250.1.999.1.1.77.1' } } }, 'of the report it carries');
  });
}
