// The typed publication record: what a validated imaging report (CDA R2 header + HL7 envelope)
// tells the box to publish. Produced by cda/ + hl7/, consumed by the KOS builder and the DMP client.

export interface Code {
  code: string;
  codeSystem: string;      // OID
  displayName?: string;
  codeSystemName?: string;
}

export interface InstanceIdentifier {
  root: string;            // OID (assigning authority) or the UID itself
  extension?: string;
}

/** A health professional (author, legal authenticator): RPPS id and organisation. */
export interface Professional {
  id: InstanceIdentifier;  // RPPS: root 1.2.250.1.71.4.2.1, extension 8 + 11 digits
  family?: string;
  given?: string;
  prefix?: string;
  role?: Code;             // profession / specialty
  organization?: { id?: InstanceIdentifier; name?: string };
  time?: string;           // HL7 TS
}

/** INS identity traits plus the local IPP. */
export interface Patient {
  ins: { value: string; oid: string };           // INS-NIR/NIA, oid 1.2.250.1.213.1.4.8|9|10
  ipp?: { value: string; oid: string };
  birthName: string;                             // nom de naissance
  givenNames: string[];                          // prénoms de naissance (first = premier prénom)
  usedName?: string;
  birthDate: string;                             // YYYYMMDD
  sex: 'M' | 'F' | 'U';
  birthPlace?: string;                           // INSEE code
}

export interface StudyReference {
  studyInstanceUid: string;
  accessionNumber?: { value: string; issuerOid?: string };
  placerOrderNumber?: { value: string; issuerOid?: string };
  actCode?: Code;                                // serviceEvent/code (LOINC in IMG-CR-IMG)
  ccamCode?: Code;                               // CCAM translation of the act (codeSystem 1.2.250.1.213.2.5), when given
  modalities: Code[];                            // DCM modality codes (e.g. MG, CT)
  anatomicRegions: Code[];
  startTime?: string;
  /** serviceEvent/effectiveTime/high (XDS serviceStopTime) */
  endTime?: string;
}

export interface PublicationRecord {
  documentId: InstanceIdentifier;                // ClinicalDocument/id
  setId: InstanceIdentifier;
  versionNumber: number;
  replaces?: InstanceIdentifier;                 // relatedDocument RPLC parentDocument/id
  title?: string;
  code: Code;                                    // LOINC 18748-4
  effectiveTime: string;
  confidentiality: Code;
  languageCode: string;
  patient: Patient;
  author: Professional;
  legalAuthenticator?: Professional;
  custodian?: { id?: InstanceIdentifier; name?: string };
  healthcareFacilityType?: Code;
  practiceSetting?: Code;
  studies: StudyReference[];                     // one per documentationOf/serviceEvent
  /** HL7 flags (OBX) */
  flags: { destDmp: boolean; masquePs: boolean; invisiblePatient: boolean; [k: string]: boolean };
  /** the CDA document itself, as received (bytes) */
  cda: Buffer;
}
