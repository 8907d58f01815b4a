// A synthetic, fully populated PublicationRecord (fictitious test patient on the *test* INS OID),
// for DMP/XDS tests that must not depend on the CDA reader.
import type { PublicationRecord } from '../../gateway/src/cda/types.js';

export interface RecordOverrides {
  studyInstanceUid?: string;
  accession?: string;
  documentRoot?: string;
  version?: number;
}

export function syntheticPublicationRecord(o: RecordOverrides = {}): PublicationRecord {
  const version = o.version ?? 1;
  const cda = Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR IRM abdomino-pelvienne v${version}</title></ClinicalDocument>\n`,
    'utf8',
  );
  return {
    documentId: { root: o.documentRoot ?? '1.2.250.1.999.1.1.8121.7', extension: `CR-${version}` },
    setId: { root: '1.2.250.1.999.1.1.8121.7', extension: 'SET-1' },
    versionNumber: version,
    title: "CR d'IRM abdomino-pelvienne",
    code: { code: '18748-4', codeSystem: '2.16.840.1.113883.6.1', displayName: "CR d'imagerie médicale", codeSystemName: 'LOINC' },
    effectiveTime: '20240105101500+0100',
    confidentiality: { code: 'N', codeSystem: '2.16.840.1.113883.5.25', displayName: 'Normal' },
    languageCode: 'fr-FR',
    patient: {
      ins: { value: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
      ipp: { value: 'IPP-0042', oid: '1.2.250.1.999.1.1.8121.1' },
      birthName: 'DUPONT',
      givenNames: ['MARIE', 'ANNE'],
      birthDate: '19790312',
      sex: 'F',
      birthPlace: '75115',
    },
    author: {
      id: { root: '1.2.250.1.71.4.2.1', extension: '899700367909' },
      family: 'RADIO',
      given: 'JEAN',
      prefix: 'DR',
      role: { code: 'SM44', codeSystem: '1.2.250.1.71.4.2.5', displayName: 'Radio-diagnostic et imagerie médicale (SM)' },
      organization: { id: { root: '1.2.250.1.71.4.2.2', extension: '499700367909006' }, name: 'CENTRE IMAGERIE TEST' },
      time: '20240105101500+0100',
    },
    legalAuthenticator: {
      id: { root: '1.2.250.1.71.4.2.1', extension: '899700367909' },
      family: 'RADIO',
      given: 'JEAN',
      prefix: 'DR',
    },
    custodian: { id: { root: '1.2.250.1.71.4.2.2', extension: '499700367909006' }, name: 'CENTRE IMAGERIE TEST' },
    healthcareFacilityType: { code: 'SA07', codeSystem: '1.2.250.1.71.4.2.4', displayName: 'Cabinet individuel' },
    practiceSetting: { code: 'AMBULATOIRE', codeSystem: '1.2.250.1.213.1.1.4.9', displayName: 'Ambulatoire' },
    studies: [
      {
        studyInstanceUid: o.studyInstanceUid ?? '1.2.250.1.999.1.1.8121.3.116',
        accessionNumber: { value: o.accession ?? 'ACC-2024-0001', issuerOid: '1.2.250.1.999.1.1.8121.2' },
        placerOrderNumber: { value: 'ORD-77', issuerOid: '1.2.250.1.999.1.1.8121.4' },
        actCode: { code: 'ZCQJ001', codeSystem: '1.2.250.1.213.2.5', displayName: 'Remnographie de l abdomen et du petit bassin' },
        modalities: [{ code: 'MR', codeSystem: '1.2.840.10008.2.16.4', displayName: 'Magnetic Resonance' }],
        anatomicRegions: [{ code: 'T-D4000', codeSystem: '1.2.250.1.213.1.1.5.695', displayName: 'Abdomen' }],
        startTime: '20240105092200+0100',
        endTime: '20240105094500+0100',
      },
    ],
    flags: { destDmp: true, masquePs: false, invisiblePatient: false },
    cda,
  };
}

/** Stand-in KOS bytes (the DMP treats the document as opaque; hash/size/digests are what matter). */
export function fakeKosPart10(seed = 'kos'): Buffer {
  const b = Buffer.alloc(132 + 64);
  b.write('DICM', 128, 'latin1');
  b.write(seed, 132, 'latin1');
  return b;
}
