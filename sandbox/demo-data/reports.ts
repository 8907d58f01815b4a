// Imaging reports for the demo studies: a CI-SIS IMG-CR-IMG shaped CDA R2 (level 1, plain-text body)
// and the ORU^R01 that carries it to the source box over MLLP, in the shape of the ANS messages.
// Also used by tests to publish reports for their own studies.
import { createHash } from 'node:crypto';
import type { DemoStudy } from './catalogue.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export interface ReportPatient {
  ins: string;
  /** INS OID (default: the test INS-NIR OID) */
  insOid?: string;
  ipp?: string;
  ippOid?: string;
  birthName: string;
  givenNames: string[];
  birthDate: string;
  sex: 'F' | 'M';
  birthPlace?: string;
}

export interface ReportStudy {
  studyInstanceUid: string;
  accessionNumber?: string;
  accessionOid?: string;
  placerOrder?: string;
  placerOid?: string;
  modality: string;
  /** YYYYMMDD */
  date: string;
  description: string;
  /** CCAM act code (default: one matching the modality) */
  ccam?: string;
  /** SNOMED CT code of the region (default: a value matching the modality) */
  region?: { code: string; displayName: string };
}

export interface ReportInput {
  patient: ReportPatient;
  studies: ReportStudy[];
  /** document lineage; default derived from the first study UID */
  setId?: string;
  version?: number;
  /** ClinicalDocument/id root; default derived from setId + version */
  documentId?: string;
  /** id of the document this version replaces (RPLC) */
  replaces?: string;
  text?: string;
  author?: { rpps: string; given: string; family: string };
  organization?: { finess: string; name: string };
}

const MODALITY_NAMES: Record<string, string> = { MR: 'Imagerie par résonance magnétique', MG: 'Mammographie', CT: 'Tomodensitométrie', CR: 'Radiographie numérisée', US: 'Echographie', DX: 'Radiographie numérique' };
// CCAM acts: bilateral mammography, brain MRI, head CT, …
const CCAM: Record<string, string> = { MG: 'QEQK004', MR: 'ACQN001', CT: 'ACQK001', CR: 'ZBQK002', DX: 'ZBQK002', US: 'ZCQM001' };
const REGIONS: Record<string, { code: string; displayName: string }> = {
  MG: { code: '76752008', displayName: 'Structure du sein' },
  MR: { code: '12738006', displayName: 'Structure du cerveau' },
};

/** A deterministic OID-shaped id under the demo root, from a seed. */
export function demoOid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  return `1.2.250.1.999.1.1.${h.readUInt32BE(0)}.${h.readUInt32BE(4) % 100000}`;
}

export function reportSetId(studies: ReportStudy[]): string {
  return demoOid(`set|${studies.map((s) => s.studyInstanceUid).join(',')}`);
}

export function reportDocumentId(setId: string, version: number): string {
  return `${setId}.${version}`;
}

/** An IMG-CR-IMG CDA R2 (header as the CI-SIS model, non-XML body holding the report text). */
export function buildReportCda(r: ReportInput): string {
  const version = r.version ?? 1;
  const setId = r.setId ?? reportSetId(r.studies);
  const docId = r.documentId ?? reportDocumentId(setId, version);
  const p = r.patient;
  const author = r.author ?? { rpps: '801234560801', given: 'Jacques', family: 'BIDEAULT' };
  const org = r.organization ?? { finess: '101235555', name: 'Centre imagerie A' };
  const first = r.studies[0];
  const time = `${first.date}120000+0100`;
  const body = Buffer.from(r.text ?? `Compte rendu : ${r.studies.map((s) => s.description).join(', ')}. Examen normal.`, 'utf8').toString('base64');
  const person = `<id root="1.2.250.1.71.4.2.1" extension="${esc(author.rpps)}"/>
      <code code="G15_10/SM44" displayName="Médecin - Radio-diagnostic (SM)" codeSystem="1.2.250.1.213.1.1.4.5"/>
      <assignedPerson><name><prefix>M</prefix><given>${esc(author.given)}</given><family>${esc(author.family)}</family><suffix>DR</suffix></name></assignedPerson>
      <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="${esc(org.finess)}"/><name>${esc(org.name)}</name>
        <standardIndustryClassCode code="AMBULATOIRE" displayName="Ambulatoire" codeSystem="1.2.250.1.213.1.1.4.9"/></representedOrganization>`;
  const order = first.placerOrder || first.accessionNumber
    ? `<inFulfillmentOf><order>${first.placerOrder ? `<id root="${first.placerOid ?? '1.2.250.1.999.1.1.4'}" extension="${esc(first.placerOrder)}"/>` : ''}${first.accessionNumber ? `<ps3-20:accessionNumber root="${first.accessionOid ?? '1.2.250.1.999.1.1.2'}" extension="${esc(first.accessionNumber)}"/>` : ''}</order></inFulfillmentOf>`
    : '';
  const services = r.studies.map((s) => {
    const region = s.region ?? REGIONS[s.modality];
    return `<documentationOf><serviceEvent classCode="ACT">
      <id root="${s.studyInstanceUid}"/>
      <code code="${esc(s.ccam ?? CCAM[s.modality] ?? 'ZZQK002')}" displayName="${esc(s.description)}" codeSystem="1.2.250.1.213.2.5" codeSystemName="CCAM">
        <translation code="${esc(s.modality)}" displayName="${esc(MODALITY_NAMES[s.modality] ?? s.modality)}" codeSystem="1.2.840.10008.2.16.4" codeSystemName="DCM">
          <qualifier><name code="121139" displayName="Modalité d'imagerie" codeSystem="1.2.840.10008.2.16.4" codeSystemName="DCM"/></qualifier></translation>
        ${region ? `<translation code="${region.code}" displayName="${esc(region.displayName)}" codeSystem="2.16.840.1.113883.6.96" codeSystemName="SNOMED CT">
          <qualifier><name code="39111-0" displayName="localisation anatomique" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC"/></qualifier></translation>` : ''}
      </code>
      <effectiveTime><low value="${s.date}100000+0100"/><high value="${s.date}103000+0100"/></effectiveTime>
    </serviceEvent></documentationOf>`;
  }).join('\n  ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ps3-20="urn:dicom-org:ps3-20">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  <templateId root="1.3.6.1.4.1.19376.1.2.20"/>
  <id root="${docId}"/>
  <code code="18748-4" displayName="CR d'imagerie médicale" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC"/>
  <title>CR d'imagerie médicale - ${esc(first.description)}</title>
  <effectiveTime value="${time}"/>
  <confidentialityCode code="N" displayName="Normal" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId root="${setId}"/>
  <versionNumber value="${version}"/>
  ${r.replaces ? `<relatedDocument typeCode="RPLC"><parentDocument><id root="${r.replaces}"/></parentDocument></relatedDocument>` : ''}
  <recordTarget><patientRole>
    <id extension="${p.ins}" root="${p.insOid ?? '1.2.250.1.213.1.4.10'}"/>
    ${p.ipp ? `<id extension="${esc(p.ipp)}" root="${p.ippOid ?? '1.2.3.4.567.8.9.10'}"/>` : ''}
    <patient classCode="PSN">
      <name><family qualifier="BR">${esc(p.birthName)}</family>${p.givenNames.map((g) => `<given>${esc(g)}</given>`).join('')}</name>
      <administrativeGenderCode code="${p.sex}" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="${p.birthDate}"/>
      ${p.birthPlace ? `<birthplace><place><addr><county>${p.birthPlace}</county></addr></place></birthplace>` : ''}
    </patient>
  </patientRole></recordTarget>
  <author><time value="${time}"/><assignedAuthor>${person}</assignedAuthor></author>
  <custodian typeCode="CST"><assignedCustodian classCode="ASSIGNED"><representedCustodianOrganization classCode="ORG" determinerCode="INSTANCE">
    <id root="1.2.250.1.71.4.2.2" extension="${esc(org.finess)}"/><name>${esc(org.name)}</name></representedCustodianOrganization></assignedCustodian></custodian>
  <legalAuthenticator><time value="${time}"/><signatureCode code="S"/><assignedEntity>${person}</assignedEntity></legalAuthenticator>
  ${order}
  ${services}
  <componentOf><encompassingEncounter><effectiveTime value="${first.date}"/><location><healthCareFacility>
    <code code="SA07" displayName="Cabinet individuel" codeSystem="1.2.250.1.71.4.2.4"/></healthCareFacility></location></encompassingEncounter></componentOf>
  <component><nonXMLBody><text mediaType="text/plain" representation="B64">${body}</text></nonXMLBody></component>
</ClinicalDocument>
`;
}

export interface OruOptions {
  controlId: string;
  /** withdrawal (ORC-1 CA) instead of publication (ORC-1 NW) */
  withdraw?: boolean;
  /** DESTDMP flag (default Y) */
  destDmp?: boolean;
  /** wrap the Base64 every 76 characters with repetitions, as some RIS do (default false) */
  now?: Date;
}

/** ORU^R01 in the ANS shape (MSH-21 CISIS_CDA_HL7_V2, CDA Base64 in an ED OBX, CE flag OBX), CR separated. */
export function oruMessage(cdaXml: string, r: ReportInput, o: OruOptions): string {
  const p = r.patient;
  const s = r.studies[0];
  const ts = (o.now ?? new Date()).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const flag = (n: number, code: string, label: string, v: boolean) => `OBX|${n}|CE|${code}^${label}^MetaDMPMSS||${v ? 'Y' : 'N'}^^expandedYes-NoIndicator||||||F|`;
  return [
    `MSH|^~\\&|RIS_DEMO|CENTRE_A|DRIMBOX|CENTRE_A|${ts}||ORU^R01^ORU_R01|${o.controlId}|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2`,
    `PID|||${p.ins}^^^ASIP-SANTE-INS-NIR&${p.insOid ?? '1.2.250.1.213.1.4.10'}&ISO^INS${p.ipp ? `~${p.ipp}^^^CENTRE-A&${p.ippOid ?? '1.2.3.4.567.8.9.10'}&ISO^PI` : ''}||${p.birthName}^${p.givenNames[0] ?? ''}^^^^^L||${p.birthDate}|${p.sex}`,
    `ORC|${o.withdraw ? 'CA' : 'NW'}|`,
    `OBR|1|${s.placerOrder ?? ''}|${s.accessionNumber ?? ''}|18748-4^CR d'imagerie médicale^LN|||${s.date}||||||||||||${s.accessionNumber ?? ''}|||||||F`,
    `OBX|1|ED|18748-4^CR d'imagerie médicale^LN||^TEXT^XML^Base64^${Buffer.from(cdaXml, 'utf8').toString('base64')}||||||F`,
    flag(2, 'MASQUE_PS', 'Masqué aux professionnels de Santé', false),
    flag(3, 'INVISIBLE_PATIENT', 'Document Non Visible par le patient', false),
    flag(4, 'DESTDMP', 'Destinataire DMP', o.destDmp ?? true),
  ].join('\r');
}

/** One ORU^R01 per demo study (each its own report), ready to send over MLLP at start. */
export function demoReportMessages(studies: DemoStudy[], opts: { controlIdPrefix?: string; now?: Date } = {}): string[] {
  return studies.map((s, i) => {
    const input: ReportInput = {
      patient: {
        ins: s.patient.ins, ipp: s.patient.ipp, ippOid: s.patient.ippOid, birthName: s.patient.birthName,
        givenNames: s.patient.givenNames, birthDate: s.patient.birthDate, sex: s.patient.sex, birthPlace: s.patient.birthPlace,
      },
      studies: [{ studyInstanceUid: s.studyInstanceUid, accessionNumber: s.accessionNumber, modality: s.modality, date: s.date, description: s.description }],
    };
    return oruMessage(buildReportCda(input), input, { controlId: `${opts.controlIdPrefix ?? 'DEMO'}-${i + 1}-${s.key}`, now: opts.now });
  });
}
