// A synthetic 4-view screening mammography study (RCC, LCC, RMLO, LMLO) written with dcmjs:
// "Digital Mammography X-Ray Image Storage - For Presentation", 12-bit MONOCHROME2, with the
// attributes a hanging protocol reads (ImageLaterality, ViewPosition, ViewCodeSequence,
// PatientOrientation). Port of the shared mg-phantom.js / make-mg-study.sh recipe.
//
// Orientation marks burnt into the pixels (value 4095, in the air above the breast, near the top
// of the chest-wall side) let a test read the displayed orientation from a screenshot:
//   right breast → ONE block, left breast → TWO blocks; CC blocks are twice as wide as MLO blocks.
import dcmjs from 'dcmjs';
import { createHash } from 'node:crypto';

const { DicomMetaDictionary, DicomDict } = dcmjs.data;
const MG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

export type MgViewLabel = 'RCC' | 'LCC' | 'RMLO' | 'LMLO';
export const MG_VIEWS: MgViewLabel[] = ['RCC', 'LCC', 'RMLO', 'LMLO'];

export interface MgStudyOptions {
  patientId?: string;
  patientName?: string;
  birthDate?: string;
  date?: string;
  accession?: string;
  seed?: number;
  rows?: number;
  cols?: number;
  /**
   * Store the right-breast images NOT mirrored (chest wall at column 0, PatientOrientation A\L or
   * A\F), as some modalities do; the viewer must then mirror them. Default: the IHE convention
   * (right breast chest wall at the last column, P\L / P\F).
   */
  rightUnmirrored?: boolean;
}

export interface MgFile { view: MgViewLabel; sopUid: string; chestWallAtLeft: boolean; buffer: Buffer }
export interface MgStudy { studyUid: string; seriesUid: string; files: MgFile[] }

export function uid(key: string): string {
  const h = createHash('sha256').update(key).digest('hex').slice(0, 32);
  return `2.25.${BigInt('0x' + h).toString()}`;
}

function rng(seed: number): () => number {
  let s = (seed >>> 0) || 1;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Phantom breast pixels (mg-phantom.js), chest wall at column 0 or at the last column, plus marks. */
export function phantom(rows: number, cols: number, lat: 'R' | 'L', view: 'CC' | 'MLO', seed: number, chestWallAtLeft: boolean): Uint16Array {
  const rnd = rng(seed);
  const noiseLayer = (cell: number) => {
    const gr = Math.ceil(rows / cell) + 2, gc = Math.ceil(cols / cell) + 2;
    const g = new Float32Array(gr * gc);
    for (let i = 0; i < g.length; i++) g[i] = rnd();
    return (r: number, c: number) => {
      const y = r / cell, x = c / cell, y0 = y | 0, x0 = x | 0, fy = y - y0, fx = x - x0;
      const sy = fy * fy * (3 - 2 * fy), sx = fx * fx * (3 - 2 * fx);
      const a = g[y0 * gc + x0], b = g[y0 * gc + x0 + 1], c2 = g[(y0 + 1) * gc + x0], d = g[(y0 + 1) * gc + x0 + 1];
      return (a * (1 - sx) + b * sx) * (1 - sy) + (c2 * (1 - sx) + d * sx) * sy;
    };
  };
  const s = Math.min(rows, cols) / 2560;
  const layers: [(r: number, c: number) => number, number][] = [[noiseLayer(Math.max(8, 400 * s)), 0.45], [noiseLayer(Math.max(4, 120 * s)), 0.3],
    [noiseLayer(Math.max(2, 35 * s)), 0.17], [noiseLayer(Math.max(1, 9 * s)), 0.08]];
  const depth = cols * (view === 'CC' ? 0.62 : 0.68);
  const half = rows * (view === 'CC' ? 0.40 : 0.46);
  const cy = rows * (view === 'CC' ? 0.5 : 0.56);
  const calc: [number, number, number][] = [];
  const cd = depth * (0.35 + 0.3 * rnd()), cyy = cy + half * (rnd() - 0.5) * 0.6;
  for (let i = 0; i < 9; i++) calc.push([cd + (rnd() - 0.5) * 60 * s, cyy + (rnd() - 0.5) * 60 * s, (1.5 + 2 * rnd()) * s + 1]);
  const out = new Uint16Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const d = chestWallAtLeft ? c : cols - 1 - c;
      const ex = d / depth, ey = (r - cy) / half;
      const q = ex * ex + ey * ey;
      let v = 60 + 20 * rnd();
      if (q < 1) {
        const thick = Math.sqrt(1 - q);
        let n = 0;
        for (const [f, w] of layers) n += w * f(r, c);
        let t = 900 + 1700 * thick + 900 * Math.max(0, n - 0.35) * thick;
        if (view === 'MLO') {
          const pm = (1 - d / (depth * 0.45)) - r / (rows * 0.55);
          if (pm > 0) t += 500 + 400 * Math.min(1, pm * 6);
        }
        for (const [md, my, mr] of calc) if ((d - md) ** 2 + (r - my) ** 2 < mr * mr) t += 1200;
        if (q > 0.985) t *= 1.08;
        v = t + 25 * (rnd() - 0.5);
      }
      out[r * cols + c] = Math.max(0, Math.min(4095, Math.round(v)));
    }
  }
  // Orientation marks: rows 2–8 %, starting 3 % from the chest wall.
  const blockW = Math.round(cols * (view === 'CC' ? 0.12 : 0.06));
  const gap = Math.round(cols * 0.05);
  const starts = lat === 'R' ? [Math.round(cols * 0.03)] : [Math.round(cols * 0.03), Math.round(cols * 0.03) + blockW + gap];
  for (let r = Math.round(rows * 0.02); r < Math.round(rows * 0.08); r++) {
    for (const st of starts) for (let d = st; d < st + blockW; d++) {
      const c = chestWallAtLeft ? d : cols - 1 - d;
      out[r * cols + c] = 4095;
    }
  }
  return out;
}

export function makeMgStudy(o: MgStudyOptions = {}): MgStudy {
  const rows = o.rows ?? 832, cols = o.cols ?? 640, seed = o.seed ?? 1;
  const date = o.date ?? '20240115', pid = o.patientId ?? 'MGTEST001', acc = o.accession ?? `ACC${date}`;
  const birth = o.birthDate ?? '19640312';
  const key = `mg|${seed}|${pid}|${date}|${acc}|${rows}x${cols}`;
  const studyUid = uid(`${key}|study`), seriesUid = uid(`${key}|series`), forUid = uid(`${key}|for`);
  const sp = +(0.07 * 3328 / rows).toFixed(4);
  const age = String(Number(date.slice(0, 4)) - Number(birth.slice(0, 4)) - (date.slice(4) < birth.slice(4) ? 1 : 0)).padStart(3, '0') + 'Y';
  const files: MgFile[] = [];
  MG_VIEWS.forEach((v, n) => {
    const lat = v[0] as 'R' | 'L';
    const view = v.slice(1) as 'CC' | 'MLO';
    const sopUid = uid(`${key}|sop|${v}`);
    const chestWallAtLeft = lat === 'L' || !!o.rightUnmirrored;
    const rowDir = chestWallAtLeft ? 'A' : 'P';
    const colDir = view === 'CC' ? (lat === 'L' ? 'R' : 'L') : 'F';
    const pixels = phantom(rows, cols, lat, view, seed * 7 + (lat === 'R' ? 2 : 1) + (view === 'MLO' ? 10 : 0), chestWallAtLeft);
    const ds: Record<string, unknown> = {
      SpecificCharacterSet: 'ISO_IR 100',
      ImageType: ['ORIGINAL', 'PRIMARY'],
      SOPClassUID: MG_SOP_CLASS, SOPInstanceUID: sopUid,
      StudyDate: date, SeriesDate: date, ContentDate: date, AcquisitionDate: date,
      StudyTime: '093000', SeriesTime: '093000', ContentTime: '093000',
      AccessionNumber: acc, Modality: 'MG', PresentationIntentType: 'FOR PRESENTATION',
      Manufacturer: 'SYNTHETIC', InstitutionName: 'CENTRE DE DEPISTAGE TEST', ReferringPhysicianName: '',
      StationName: 'MAMMO01', StudyDescription: 'MAMMOGRAPHIE BILATERALE DE DEPISTAGE', SeriesDescription: 'Screening 4 views',
      ManufacturerModelName: 'PHANTOM MG',
      AnatomicRegionSequence: [{ CodeValue: '76752008', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Breast' }],
      PatientName: o.patientName ?? 'DEPISTAGE^ANNE', PatientID: pid, PatientBirthDate: birth, PatientSex: 'F', PatientAge: age,
      BodyPartExamined: 'BREAST', KVP: '29', DeviceSerialNumber: 'SN0001', SoftwareVersions: 'mg-phantom 1',
      ImagerPixelSpacing: [sp, sp], PositionerPrimaryAngle: view === 'CC' ? 0 : lat === 'L' ? 45 : -45,
      ViewPosition: view, DetectorType: 'DIRECT',
      StudyInstanceUID: studyUid, SeriesInstanceUID: seriesUid, StudyID: '1', SeriesNumber: '1', InstanceNumber: String(n + 1),
      PatientOrientation: [rowDir, colDir], FrameOfReferenceUID: forUid, ImageLaterality: lat, PositionReferenceIndicator: '',
      SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', Rows: rows, Columns: cols,
      BitsAllocated: 16, BitsStored: 12, HighBit: 11, PixelRepresentation: 0,
      PixelIntensityRelationship: 'LOG', PixelIntensityRelationshipSign: -1,
      WindowCenter: '2200', WindowWidth: '2600', RescaleIntercept: '0', RescaleSlope: '1', RescaleType: 'US',
      LossyImageCompression: '00', BreastImplantPresent: 'NO', QualityControlImage: 'NO', BurnedInAnnotation: 'NO',
      PositionerType: 'MAMMOGRAPHIC', AcquisitionContextSequence: [], OrganExposed: 'BREAST',
      ViewCodeSequence: [{
        CodeValue: view === 'CC' ? '399162004' : '399368009', CodingSchemeDesignator: 'SCT',
        CodeMeaning: view === 'CC' ? 'cranio-caudal' : 'medio-lateral oblique', ViewModifierCodeSequence: [],
      }],
      PresentationLUTShape: 'IDENTITY',
      PixelData: pixels.buffer,
      _vrMap: { PixelData: 'OW' },
    };
    const meta = {
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: MG_SOP_CLASS, MediaStorageSOPInstanceUID: sopUid,
      TransferSyntaxUID: EXPLICIT_LE, ImplementationClassUID: '2.25.1234567890',
    };
    const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
    dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
    files.push({ view: v, sopUid, chestWallAtLeft, buffer: Buffer.from(dict.write()) });
  });
  return { studyUid, seriesUid, files };
}
