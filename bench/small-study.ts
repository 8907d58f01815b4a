// A study of many small instances (the other shape of real exams): `count` uncompressed 16-bit
// secondary-capture-sized images of ~`kb` KB each, one series, uploaded to Orthanc as they are built
// (nothing kept in memory or on disk). Pixel bytes are pseudo-random so nothing downstream can
// compress them away.
import { randomBytes } from 'node:crypto';
import type { Orthanc } from '../test/helpers/orthanc.js';
import { seededUid, writePart10 } from '../sandbox/demo-data/part10.js';

export async function uploadSmallStudy(orthanc: Orthanc, count: number, kb: number, seed: string): Promise<string> {
  const study = seededUid(`${seed}|study`);
  const series = seededUid(`${seed}|series`);
  const side = Math.round(Math.sqrt((kb * 1024) / 2));
  const pixels = randomBytes(side * side * 2);
  const one = (i: number) => writePart10({
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.7', // Secondary Capture Image Storage
    SOPInstanceUID: seededUid(`${seed}|sop|${i}`),
    StudyInstanceUID: study, SeriesInstanceUID: series,
    PatientID: `BENCH-${seed}`, PatientName: 'BENCH^SMALL', StudyDate: '20240115', Modality: 'OT',
    SeriesNumber: '1', InstanceNumber: String(i + 1),
    SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', Rows: side, Columns: side,
    BitsAllocated: 16, BitsStored: 16, HighBit: 15, PixelRepresentation: 0,
    // each instance differs (first bytes) so Orthanc stores them all
    PixelData: [Buffer.concat([Buffer.from(String(i).padStart(8, '0')), pixels.subarray(8)]).buffer],
    _vrMap: { PixelData: 'OW' },
  });
  // a few uploads in flight: Orthanc's REST upload is one file a request
  let next = 0;
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next < count) await orthanc.upload([one(next++)]);
  }));
  return study;
}
