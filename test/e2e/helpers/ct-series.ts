// A small synthetic CT study for the viewer's tool tests, written with dcmjs (sandbox/demo-data/part10.ts):
// known geometry and known Hounsfield units, so a measurement can be checked against the truth.
//   - axial series: `slices` slices of 128×128, Pixel Spacing 0.7 mm, 2.5 mm apart (regular ImagePositionPatient);
//     air (−1024 HU) with a 100 HU square (rows/cols 34–93) in slices 8 … slices−9, a 700 HU ball beside it
//     (centre row 64, col 110), and two 3000 HU marker dots 80 pixels apart (row 16, cols 24 and 104): 56 mm.
//   - "gap" series: the same with one slice missing (irregular spacing: no MPR);
//   - localizer: one sagittal image in the same frame of reference (reference lines).
import { seededUid, writePart10 } from '../../../sandbox/demo-data/part10.js';

export const CT = {
  size: 128, spacing: 0.7, sliceGap: 2.5, squareHu: 100, square: [34, 93] as const,
  dots: [[16, 24], [16, 104]] as const, dotsMm: 80 * 0.7, ballHu: 700,
};

export interface CtStudy { studyUid: string; axialUid: string; gapUid: string; localizerUid: string; files: Buffer[] }

export function makeCtStudy(slices = 40): CtStudy {
  const key = `ct-tools|${slices}`;
  const studyUid = seededUid(`${key}|study`);
  const forUid = seededUid(`${key}|for`);
  const axialUid = seededUid(`${key}|axial`), gapUid = seededUid(`${key}|gap`), localizerUid = seededUid(`${key}|loc`);
  const n = CT.size;
  const common = (seriesUid: string, number: number, desc: string) => ({
    SpecificCharacterSet: 'ISO_IR 192', SOPClassUID: '1.2.840.10008.5.1.4.1.1.2', Modality: 'CT',
    StudyInstanceUID: studyUid, SeriesInstanceUID: seriesUid, FrameOfReferenceUID: forUid, PositionReferenceIndicator: '',
    StudyDate: '20250301', SeriesDate: '20250301', StudyTime: '101500', AccessionNumber: 'CTACC1', StudyID: '1',
    StudyDescription: 'SCANNER SYNTHETIQUE', SeriesDescription: desc, SeriesNumber: String(number),
    PatientName: 'FANTOME^CT', PatientID: 'CTTEST001', PatientBirthDate: '19600101', PatientSex: 'M',
    InstitutionName: 'CENTRE TEST', Manufacturer: 'SYNTHETIC', ReferringPhysicianName: '',
    AnatomicRegionSequence: [{ CodeValue: '51185008', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Thorax' }],
    SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', BitsAllocated: 16, BitsStored: 12, HighBit: 11,
    PixelRepresentation: 0, RescaleIntercept: '-1024', RescaleSlope: '1', RescaleType: 'HU', KVP: '120',
  });
  const axial = (seriesUid: string, number: number, desc: string, z: number[]) => z.map((zi, i) => {
    const px = new Uint16Array(n * n);
    const slice = Math.round(zi / CT.sliceGap);
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) {
      let hu = -1024;
      if (slice >= 8 && slice <= slices - 9 && r >= CT.square[0] && r <= CT.square[1] && c >= CT.square[0] && c <= CT.square[1]) hu = CT.squareHu;
      const dz = (slice - slices / 2) * CT.sliceGap / CT.spacing;
      if ((r - 64) ** 2 + (c - 110) ** 2 + dz ** 2 < 12 ** 2) hu = CT.ballHu;
      for (const [dr, dc] of CT.dots) if (Math.abs(r - dr) <= 1 && Math.abs(c - dc) <= 1) hu = 3000;
      px[r * n + c] = hu + 1024;
    }
    return writePart10({
      ...common(seriesUid, number, desc),
      SOPInstanceUID: seededUid(`${key}|${seriesUid}|${i}`), InstanceNumber: String(i + 1),
      ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
      ImagePositionPatient: [String(-n * CT.spacing / 2), String(-n * CT.spacing / 2), String(zi)],
      ImageOrientationPatient: ['1', '0', '0', '0', '1', '0'], SliceThickness: String(CT.sliceGap), SliceLocation: String(zi),
      PixelSpacing: [String(CT.spacing), String(CT.spacing)], Rows: n, Columns: n,
      WindowCenter: '40', WindowWidth: '400',
      PixelData: [px.buffer], _vrMap: { PixelData: 'OW' },
    });
  });
  const z = Array.from({ length: slices }, (_, i) => i * CT.sliceGap);
  const files = [
    ...axial(axialUid, 1, 'Thorax axial', z),
    ...axial(gapUid, 2, 'Thorax coupes manquantes', z.filter((_, i) => i !== 10)),
  ];
  // a sagittal localizer: rows along −z (head up), columns along +y
  const rows = slices, cols = n;
  const loc = new Uint16Array(rows * cols).fill(1024 - 500);
  files.push(writePart10({
    ...common(localizerUid, 3, 'Repère sagittal'),
    SOPInstanceUID: seededUid(`${key}|loc|0`), InstanceNumber: '1', ImageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'],
    ImagePositionPatient: ['0', String(-n * CT.spacing / 2), String((slices - 1) * CT.sliceGap)],
    ImageOrientationPatient: ['0', '1', '0', '0', '0', '-1'],
    PixelSpacing: [String(CT.sliceGap), String(CT.spacing)], Rows: rows, Columns: cols,
    PixelData: [loc.buffer], _vrMap: { PixelData: 'OW' },
  }));
  return { studyUid, axialUid, gapUid, localizerUid, files };
}
