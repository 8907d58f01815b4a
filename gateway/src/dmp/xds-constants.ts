// XDS.b / ebRIM identifiers (IHE ITI TF-3 §4.2) and the CI-SIS (DMP) codes a DRIMbox publishes with.
// Shared by the builders, the client and the sandbox simulator so both ends agree on one table.

export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  wsa: 'http://www.w3.org/2005/08/addressing',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  saml2: 'urn:oasis:names:tc:SAML:2.0:assertion',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
  hl7: 'urn:hl7-org:v3',
  rim: 'urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0',
  rs: 'urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0',
  lcm: 'urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0',
  query: 'urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0',
  xds: 'urn:ihe:iti:xds-b:2007',
  xop: 'http://www.w3.org/2004/08/xop/include',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  xades: 'http://uri.etsi.org/01903/v1.3.2#',
} as const;

export const ACTION = {
  iti41: 'urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b',
  iti41Response: 'urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse',
  iti18: 'urn:ihe:iti:2007:RegistryStoredQuery',
  iti18Response: 'urn:ihe:iti:2007:RegistryStoredQueryResponse',
  iti43: 'urn:ihe:iti:2007:RetrieveDocumentSet',
  iti43Response: 'urn:ihe:iti:2007:RetrieveDocumentSetResponse',
  iti57: 'urn:ihe:iti:2010:UpdateDocumentSet',
  iti57Response: 'urn:ihe:iti:2010:UpdateDocumentSetResponse',
  fault: 'http://www.w3.org/2005/08/addressing/soap/fault',
} as const;

export const OBJECT_TYPE = {
  stableDocumentEntry: 'urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1',
  registryPackage: 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage',
  association: 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association',
} as const;

/** classificationScheme UUIDs */
export const SCHEME = {
  submissionSetNode: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd', // classificationNode
  ssAuthor: 'urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d',
  ssContentType: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
  deAuthor: 'urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d',
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  confidentiality: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
  healthcareFacilityType: 'urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1',
  practiceSetting: 'urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead',
  eventCode: 'urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4',
} as const;

/** identificationScheme UUIDs (ExternalIdentifier) */
export const IDENT = {
  ssPatientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
  ssSourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
  ssUniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
  dePatientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  deUniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
} as const;

export const ASSOCIATION = {
  hasMember: 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember',
  replace: 'urn:ihe:iti:2007:AssociationType:RPLC',
  signs: 'urn:ihe:iti:2007:AssociationType:signs',
  updateAvailabilityStatus: 'urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus',
} as const;

export const STATUS = {
  approved: 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved',
  deprecated: 'urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated',
  /** DMP extensions of the availability status (CI-SIS volet DMP) */
  deleted: 'urn:asip:ci-sis:2010:StatusType:Deleted',
  archived: 'urn:asip:ci-sis:2010:StatusType:Archived',
} as const;

export const RESPONSE_STATUS = {
  success: 'urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success',
  failure: 'urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure',
  partialSuccess: 'urn:ihe:iti:2007:ResponseStatusType:PartialSuccess',
} as const;

export const ERROR_SEVERITY = 'urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error';

export const STORED_QUERY = {
  findDocuments: 'urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d',
  getDocuments: 'urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4',
} as const;

export interface CodedValue {
  code: string;
  scheme: string;       // codingScheme (OID or 'URN'/'ASTM' for DSG)
  display: string;
}

/** Codes fixed by DRIM-M.md §3 for the KOS entry. */
export const KOS_CODES = {
  mimeType: 'application/dicom',
  classCode: { code: '31', scheme: '1.2.250.1.213.1.1.4.1', display: 'Imagerie médicale' },
  typeCode: { code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12', display: "Reference d'objets d'un examen d'imagerie" },
  formatCode: {
    code: '1.2.840.10008.5.1.4.1.1.88.59',
    scheme: '1.2.840.10008.2.6.1',
    display: "Document de Références d'objets d'imagerie selon profil IHE RAD XDS-I",
  },
} as const satisfies Record<string, string | CodedValue>;

/** Codes for the CDA imaging report (CR d'imagerie médicale, CI-SIS). */
export const REPORT_CODES = {
  mimeType: 'text/xml',
  classCode: { code: '10', scheme: '1.2.250.1.213.1.1.4.1', display: 'Compte rendu' },
  formatCode: {
    code: 'urn:ihe:rad:CDA:ImagingReportStructuredHeadings:2013',
    scheme: '1.3.6.1.4.1.19376.1.2.3',
    display: "CR d'imagerie médicale",
  },
} as const;

/** The IHE DSG submission-set signature document (as in the ANS example). */
export const SIGNATURE_CODES = {
  mimeType: 'text/xml',
  languageCode: 'art',
  classCode: { code: 'urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1', scheme: 'URN', display: 'Digital Signature' },
  typeCode: { code: 'E1762', scheme: 'ASTM', display: 'Full Document' },
  formatCode: { code: 'http://www.w3.org/2000/09/xmldsig#', scheme: 'URN', display: 'Default Signature Style' },
  eventCode: { code: '1.2.840.10065.1.12.1.14', scheme: '1.2.840.10065.1.12', display: 'Source' },
  masquePs: { code: 'MASQUE_PS', scheme: '1.2.250.1.213.1.1.4.13', display: 'Masqué aux professionnels de santé' },
  invisiblePatient: { code: 'INVISIBLE_PATIENT', scheme: '1.2.250.1.213.1.1.4.13', display: 'Non visible par le patient' },
} as const;

export const VALUE_SET_OID = {
  modality: '1.2.250.1.213.1.1.5.618',
  anatomicRegion: '1.2.250.1.213.1.1.5.695',
  confidentiality: '2.16.840.1.113883.5.25',
  confidentialityDmp: '1.2.250.1.213.1.1.4.13',
  healthcareFacilityType: '1.2.250.1.71.4.2.4',
  practiceSetting: '1.2.250.1.213.1.1.4.9',
  loinc: '2.16.840.1.113883.6.1',
} as const;

/** INS OIDs: NIR, NIA, test NIR. */
export const INS_OIDS = ['1.2.250.1.213.1.4.8', '1.2.250.1.213.1.4.9', '1.2.250.1.213.1.4.10'] as const;
