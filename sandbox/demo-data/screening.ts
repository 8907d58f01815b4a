// The demo's screening batch: 20 women with a 2024 screening mammogram (4 views, generated), 16 of
// them with a prior two years earlier, two with a missing view and two with the laterality labels
// swapped, split between the two source boxes; and the batch rows naming the current exams.
import { makeMgStudy, type MgView } from './mg-study.js';
import { nirWithKey, TEST_INS_OID, type DemoPatient, type DemoStudy } from './catalogue.js';

export const SCREENING_CASES = 20;
const FAMILY = ['MARTIN', 'BERNARD', 'THOMAS', 'PETIT', 'ROBERT', 'RICHARD', 'DURAND', 'DUBOIS', 'MOREAU', 'LAURENT', 'SIMON', 'MICHEL', 'LEFEBVRE', 'LEROY', 'ROUX', 'DAVID', 'BERTRAND', 'MOREL', 'FOURNIER', 'GIRARD'];
const GIVEN = ['CLAIRE', 'SYLVIE', 'ISABELLE', 'NATHALIE', 'CATHERINE', 'FRANÇOISE', 'MARTINE', 'BRIGITTE', 'CHRISTINE', 'PATRICIA'];

export interface ScreeningDemo {
  /** studies per source box (current and prior exams) */
  byBox: { 'box-a': DemoStudy[]; 'box-c': DemoStudy[] };
  rows: { ins: string; insOid: string; birthDate: string; sex: string; familyName: string; givenName: string; accessionNumber: string }[];
}

export function screeningDemo(): ScreeningDemo {
  const byBox: ScreeningDemo['byBox'] = { 'box-a': [], 'box-c': [] };
  const rows: ScreeningDemo['rows'] = [];
  for (let i = 0; i < SCREENING_CASES; i++) {
    const box = i % 2 === 0 ? 'box-a' : 'box-c';
    const year = 1952 + (i * 7) % 22;
    const patient: DemoPatient = {
      ins: nirWithKey(`2${String(year % 100).padStart(2, '0')}${String(1 + (i % 12)).padStart(2, '0')}69123${String(100 + i).padStart(3, '0')}`),
      ipp: `DEP${String(1000 + i)}`, ippIssuer: box === 'box-a' ? 'CENTRE-A' : 'CENTRE-C', ippOid: box === 'box-a' ? '1.2.3.4.567.8.9.10' : '1.2.3.4.567.8.9.30',
      birthName: FAMILY[i], givenNames: [GIVEN[i % GIVEN.length]], birthDate: `${year}0${1 + (i % 9)}1${i % 10}`, sex: 'F', birthPlace: '69123',
    };
    const missing: MgView | undefined = i === 3 || i === 12 ? 'LMLO' : undefined;
    const exam = (date: string, accession: string, current: boolean): DemoStudy => {
      const s = makeMgStudy({
        patientId: patient.ipp, patientName: `${patient.birthName}^${patient.givenNames[0]}`, birthDate: patient.birthDate, sex: 'F', date, accession,
        size: [416, 320], seed: 100 + i * 2 + (current ? 0 : 1), lesion: current && i % 7 === 5 ? 'R' : 'none',
        institution: box === 'box-a' ? 'CENTRE IMAGERIE A' : 'CENTRE IMAGERIE C', extra: { IssuerOfPatientID: patient.ippIssuer },
        swapLaterality: current && (i === 7 || i === 16),
      });
      const files = s.files.filter((f) => !(current && f.view === missing)).map((f) => f.part10);
      return { key: `dep-${i}-${date}`, patient, studyInstanceUid: s.studyInstanceUid, accessionNumber: accession, date, description: 'MAMMOGRAPHIE BILATERALE DE DEPISTAGE', modality: 'MG', files };
    };
    const accession = `DEP-2024-${String(i + 1).padStart(3, '0')}`;
    if (i % 5 !== 4) byBox[box].push(exam(`2022${String(1 + (i % 12)).padStart(2, '0')}15`, `DEP-2022-${String(i + 1).padStart(3, '0')}`, false));
    byBox[box].push(exam(`2024${String(1 + (i % 12)).padStart(2, '0')}15`, accession, true));
    rows.push({ ins: patient.ins, insOid: TEST_INS_OID, birthDate: patient.birthDate, sex: 'F', familyName: patient.birthName, givenName: patient.givenNames[0], accessionNumber: accession });
  }
  return { byBox, rows };
}
