// The value sets the simulator enforces: the CI-SIS codes the DRIMbox publishes with (DRIM-M.md §3)
// and those of the ANS example submission. A code outside them is an XDSRegistryMetadataError.
import { KOS_CODES, REPORT_CODES, SIGNATURE_CODES, VALUE_SET_OID } from '../../gateway/src/dmp/xds-constants.js';

export type CodeCheck = (code: string, scheme: string) => boolean;

const pairs = (...cs: { code: string; scheme: string }[]): CodeCheck => {
  const set = new Set(cs.map((c) => `${c.code}|${c.scheme}`));
  return (code, scheme) => set.has(`${code}|${scheme}`);
};

export const DICOM_MODALITIES = new Set(
  'AR AU BDUS BI BMD CR CT DG DOC DX ECG EPS ES GM HC HD IO IVOCT IVUS KER LEN LS MG MR NM OAM OCT OP OPM OPT OPV OSS OT PR PT PX REG RESP RF RG SC SM SMR SR SRF ST TG US VA XA XC'.split(' '),
);

export const VALUE_SETS: Record<string, CodeCheck> = {
  classCode: pairs(KOS_CODES.classCode, REPORT_CODES.classCode, SIGNATURE_CODES.classCode),
  typeCode: pairs(KOS_CODES.typeCode, { code: '18748-4', scheme: VALUE_SET_OID.loinc }, SIGNATURE_CODES.typeCode),
  formatCode: pairs(KOS_CODES.formatCode, REPORT_CODES.formatCode, SIGNATURE_CODES.formatCode),
  confidentiality: (code, scheme) =>
    (scheme === VALUE_SET_OID.confidentiality && ['N', 'R', 'V'].includes(code)) ||
    (scheme === VALUE_SET_OID.confidentialityDmp && ['MASQUE_PS', 'INVISIBLE_PATIENT', 'INVISIBLE_REPRESENTANTS_LEGAUX'].includes(code)),
  healthcareFacilityType: (code, scheme) => scheme === VALUE_SET_OID.healthcareFacilityType && /^SA\d{2}$/.test(code),
  practiceSetting: (code, scheme) => scheme === VALUE_SET_OID.practiceSetting && /^[A-Z][A-Z_]+$/.test(code),
  contentType: (code, scheme) => scheme === '1.2.250.1.213.2.2' && /^\w+$/.test(code),
  eventCode: (code, scheme) =>
    (scheme === VALUE_SET_OID.modality && DICOM_MODALITIES.has(code)) ||
    (scheme === VALUE_SET_OID.anatomicRegion && /^\S+$/.test(code)) ||
    (scheme === '1.2.250.1.213.2.5' && /^\S+$/.test(code)) || // CCAM act codes
    (scheme === SIGNATURE_CODES.eventCode.scheme && code === SIGNATURE_CODES.eventCode.code),
};
