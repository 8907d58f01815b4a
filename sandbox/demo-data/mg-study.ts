// A 4-view screening mammography study (RCC, LCC, RMLO, LMLO) built in memory: real MG IOD
// attributes (ImageLaterality, ViewPosition, ViewCodeSequence, PatientOrientation), phantom pixels.
// Real mammograms are not available as packages; this stands in for them in the demo and tests.
import { mgPhantom } from './mg-phantom.js';
import { seededUid, writePart10 } from './part10.js';

export const MG_FOR_PRESENTATION = '1.2.840.10008.5.1.4.1.1.1.2';
export const MG_VIEWS = ['RCC', 'LCC', 'RMLO', 'LMLO'] as const;
export type MgView = (typeof MG_VIEWS)[number];

export interface MgStudyOptions {
  patientId?: string;
  patientName?: string;
  birthDate?: string;
  sex?: 'F' | 'M';
  date?: string;
  accession?: string;
  /** full = 3328×2560 (~17 MB a view, ~68 MB the study); small = 832×640; or [rows, cols] */
  size?: 'full' | 'small' | [number, number];
  seed?: number;
  lesion?: 'L' | 'R' | 'none';
  institution?: string;
  /** attributes to add or override on every view (e.g. IssuerOfPatientID) */
  extra?: Record<string, unknown>;
  /**
   * Store the right-breast views NOT mirrored (chest wall at column 0, PatientOrientation A\L or
   * A\F), as some modalities do; a viewer must then mirror them. Default: the IHE convention (right
   * breast's chest wall at the last column, P\L / P\F).
   */
  rightUnmirrored?: boolean;
  /** label every view with the other breast (ImageLaterality, PatientOrientation): a laterality error to catch at reading */
  swapLaterality?: boolean;
}

export interface MgStudy {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  files: { view: MgView; sopInstanceUid: string; chestWallAtLeft: boolean; part10: Buffer }[];
}

export function makeMgStudy(o: MgStudyOptions = {}): MgStudy {
  const patientId = o.patientId ?? 'MGTEST001';
  const date = o.date ?? '20240115';
  const accession = o.accession ?? `ACC${date}`;
  const [rows, cols] = Array.isArray(o.size) ? o.size : o.size === 'full' ? [3328, 2560] : [832, 640];
  const spacing = (0.07 * 3328) / rows;
  const seed = o.seed ?? 1;
  const key = `mg|${seed}|${patientId}|${date}|${accession}|${rows}x${cols}`;
  const studyInstanceUid = seededUid(`${key}|study`);
  const seriesInstanceUid = seededUid(`${key}|series`);
  const frameOfReferenceUid = seededUid(`${key}|for`);
  const birthDate = o.birthDate ?? '19640312';
  const age = Number(date.slice(0, 4)) - Number(birthDate.slice(0, 4)) - (date.slice(4) < birthDate.slice(4) ? 1 : 0);
  const files: MgStudy['files'] = [];
  let n = 0;
  for (const view of MG_VIEWS) {
    n++;
    const lat = view[0] as 'L' | 'R';
    const labelLat = o.swapLaterality ? (lat === 'L' ? 'R' : 'L') : lat;
    const pos = view.slice(1) as 'CC' | 'MLO';
    const sopInstanceUid = seededUid(`${key}|sop|${view}`);
    const chestWallAtLeft = lat === 'L' || Boolean(o.rightUnmirrored);
    const pixels = mgPhantom({
      rows, cols, laterality: lat, view: pos, seed: seed * 7 + (lat === 'R' ? 2 : 1) + (pos === 'MLO' ? 10 : 0),
      lesion: (o.lesion ?? 'L') === lat, chestWallAtLeft,
    });
    const ds: Record<string, unknown> = {
      SpecificCharacterSet: 'ISO_IR 192',
      ImageType: ['ORIGINAL', 'PRIMARY'],
      InstanceCreationDate: date,
      InstanceCreationTime: '093000',
      SOPClassUID: MG_FOR_PRESENTATION,
      SOPInstanceUID: sopInstanceUid,
      StudyDate: date, SeriesDate: date, AcquisitionDate: date, ContentDate: date,
      StudyTime: '093000', SeriesTime: '093000', AcquisitionTime: '093000', ContentTime: '093000',
      AccessionNumber: accession,
      Modality: 'MG',
      PresentationIntentType: 'FOR PRESENTATION',
      Manufacturer: 'SYNTHETIC',
      InstitutionName: o.institution ?? 'CENTRE DE DEPISTAGE TEST',
      ReferringPhysicianName: '',
      StationName: 'MAMMO01',
      StudyDescription: 'MAMMOGRAPHIE BILATERALE DE DEPISTAGE',
      SeriesDescription: 'Screening 4 views',
      ManufacturerModelName: 'PHANTOM MG',
      AnatomicRegionSequence: [{ CodeValue: '76752008', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Breast' }],
      PatientName: o.patientName ?? 'DEPISTAGE^ANNE',
      PatientID: patientId,
      PatientBirthDate: birthDate,
      PatientSex: o.sex ?? 'F',
      PatientAge: `${String(age).padStart(3, '0')}Y`,
      BodyPartExamined: 'BREAST',
      KVP: '29',
      DeviceSerialNumber: 'SN0001',
      SoftwareVersions: 'drimbox mg-phantom 1',
      DistanceSourceToDetector: '660',
      DistanceSourceToPatient: '600',
      ExposureTime: '1200',
      XRayTubeCurrent: '100',
      Exposure: '120',
      ImagerPixelSpacing: [String(spacing.toFixed(4)), String(spacing.toFixed(4))],
      FocalSpots: '0.3',
      AnodeTargetMaterial: 'TUNGSTEN',
      BodyPartThickness: '50',
      CompressionForce: '110',
      PositionerType: 'MAMMOGRAPHIC',
      PositionerPrimaryAngle: pos === 'CC' ? '0' : lat === 'L' ? '45' : '-45',
      ViewPosition: pos,
      DetectorType: 'DIRECT',
      FilterMaterial: 'RHODIUM',
      StudyInstanceUID: studyInstanceUid,
      SeriesInstanceUID: seriesInstanceUid,
      StudyID: '1',
      SeriesNumber: '1',
      InstanceNumber: String(n),
      PatientOrientation: [chestWallAtLeft ? 'A' : 'P', pos === 'CC' ? (labelLat === 'L' ? 'R' : 'L') : 'F'],
      FrameOfReferenceUID: frameOfReferenceUid,
      ImageLaterality: labelLat,
      PositionReferenceIndicator: '',
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      Rows: rows,
      Columns: cols,
      BitsAllocated: 16,
      BitsStored: 12,
      HighBit: 11,
      PixelRepresentation: 0,
      QualityControlImage: 'NO',
      BurnedInAnnotation: 'NO',
      PixelIntensityRelationship: 'LOG',
      PixelIntensityRelationshipSign: -1,
      WindowCenter: '2200',
      WindowWidth: '2600',
      RescaleIntercept: '0',
      RescaleSlope: '1',
      RescaleType: 'US',
      LossyImageCompression: '00',
      OrganDose: '1.2',
      OrganExposed: 'BREAST',
      AcquisitionContextSequence: [],
      EntranceDoseInmGy: '4.5',
      ViewCodeSequence: [{
        CodeValue: pos === 'CC' ? '399162004' : '399368009',
        CodingSchemeDesignator: 'SCT',
        CodeMeaning: pos === 'CC' ? 'cranio-caudal' : 'medio-lateral oblique',
        ViewModifierCodeSequence: [],
      }],
      PresentationLUTShape: 'IDENTITY',
      ...o.extra,
      PixelData: [pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength)],
      _vrMap: { PixelData: 'OW' },
    };
    files.push({ view, sopInstanceUid, chestWallAtLeft, part10: writePart10(ds) });
  }
  return { studyInstanceUid, seriesInstanceUid, files };
}
