// The ANS performance reference exam, rebuilt here: one CT series of ~1,300 axial 512×512 slices,
// JPEG-LS lossless (1.2.840.10008.1.2.4.80), ~200–300 MB. The ANS set itself cannot ship in the repo,
// so slices are synthesised (a body phantom with noise, which keeps JPEG-LS near its real-CT ratio)
// and compressed by dcmtk's `dcmcjpls`. Made once per parameter set into a cache folder.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { seededUid, writePart10 } from './part10.js';

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
export const JPEG_LS_LOSSLESS = '1.2.840.10008.1.2.4.80';

export interface ReferenceCtOptions {
  /** number of slices (ANS set: about 1,300) */
  slices?: number;
  /** rows = columns */
  size?: number;
  patientId?: string;
  patientName?: string;
  seed?: string;
}

export interface ReferenceCt {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  /** the JPEG-LS Part 10 files, in slice order */
  files: string[];
}

/** Deterministic pseudo-random numbers (xorshift32): same seed, same phantom, same compressed size. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

/** One axial slice in HU + 1024 (unsigned 12 bits): air, an elliptic body, spine, two lungs, noise. */
function slicePixels(size: number, z: number, slices: number, random: () => number): Uint16Array {
  const px = new Uint16Array(size * size);
  const c = size / 2;
  const t = z / Math.max(1, slices - 1);
  const ax = size * (0.40 + 0.04 * Math.sin(t * Math.PI));
  const ay = size * 0.30;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = (x - c) / ax;
      const dy = (y - c) / ay;
      let hu = -1000;
      if (dx * dx + dy * dy <= 1) {
        hu = 40; // soft tissue
        const lx = (Math.abs(x - c) - size * 0.17) / (size * 0.12);
        const ly = (y - c + size * 0.03) / (size * 0.17);
        if (lx * lx + ly * ly <= 1 && t > 0.2 && t < 0.8) hu = -850; // lungs
        const sx = (x - c) / (size * 0.045);
        const sy = (y - c - size * 0.2) / (size * 0.045);
        if (sx * sx + sy * sy <= 1) hu = 700; // vertebra
      }
      const noise = (random() + random() + random() - 1.5) * 24;
      px[y * size + x] = Math.max(0, Math.min(4095, Math.round(hu + 1024 + noise)));
    }
  }
  return px;
}

function runDcmcjpls(src: string, dst: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('dcmcjpls', ['--encode-lossless', src, dst], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', (e) => reject(new Error(`dcmcjpls could not start (dcmtk installed?): ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`dcmcjpls failed (${code}): ${err.trim()}`))));
  });
}

/**
 * Builds the reference CT series into `dir` (or reuses it when complete). Each slice is written
 * uncompressed, compressed with dcmcjpls, and the uncompressed copy removed.
 */
export async function makeReferenceCt(dir: string, o: ReferenceCtOptions = {}): Promise<ReferenceCt> {
  const slices = o.slices ?? 1300;
  const size = o.size ?? 512;
  const seed = o.seed ?? 'ans-reference-ct';
  const key = `${seed}|${slices}|${size}|${o.patientId ?? 'BENCH-CT'}`;
  const studyInstanceUid = seededUid(`${key}|study`);
  const seriesInstanceUid = seededUid(`${key}|series`);
  const frameOfReferenceUid = seededUid(`${key}|for`);
  const out = join(dir, `ct-${slices}x${size}-${seededUid(key).slice(-12)}`);
  const name = (i: number) => join(out, `${String(i + 1).padStart(5, '0')}.dcm`);
  const files = Array.from({ length: slices }, (_, i) => name(i));
  if (existsSync(join(out, '.complete'))) return { studyInstanceUid, seriesInstanceUid, files };

  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const thickness = 0.625;
  const spacing = 0.7;
  const random = rng(slices * 7919 + size);
  const make = async (i: number) => {
    const pixels = slicePixels(size, i, slices, random);
    const ds: Record<string, unknown> = {
      SpecificCharacterSet: 'ISO_IR 192',
      ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
      SOPClassUID: CT_IMAGE_STORAGE,
      SOPInstanceUID: seededUid(`${key}|sop|${i}`),
      StudyDate: '20240115', SeriesDate: '20240115', ContentDate: '20240115',
      StudyTime: '101500', SeriesTime: '101500', ContentTime: '101500',
      AccessionNumber: 'BENCHCT1',
      Modality: 'CT',
      Manufacturer: 'SYNTHETIC',
      ReferringPhysicianName: '',
      StudyDescription: 'SCANNER THORACO-ABDOMINAL (REFERENCE ANS)',
      SeriesDescription: 'Axial 0.625 mm',
      PatientName: o.patientName ?? 'BENCH^CT',
      PatientID: o.patientId ?? 'BENCH-CT',
      PatientBirthDate: '19600101',
      PatientSex: 'M',
      SliceThickness: String(thickness),
      KVP: '120',
      StudyInstanceUID: studyInstanceUid,
      SeriesInstanceUID: seriesInstanceUid,
      StudyID: '1',
      SeriesNumber: '2',
      InstanceNumber: String(i + 1),
      ImagePositionPatient: [String(-(size * spacing) / 2), String(-(size * spacing) / 2), String((-i * thickness).toFixed(3))],
      ImageOrientationPatient: ['1', '0', '0', '0', '1', '0'],
      FrameOfReferenceUID: frameOfReferenceUid,
      PositionReferenceIndicator: '',
      SliceLocation: String((-i * thickness).toFixed(3)),
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      Rows: size,
      Columns: size,
      PixelSpacing: [String(spacing), String(spacing)],
      BitsAllocated: 16,
      BitsStored: 12,
      HighBit: 11,
      PixelRepresentation: 0,
      WindowCenter: '40',
      WindowWidth: '400',
      RescaleIntercept: '-1024',
      RescaleSlope: '1',
      RescaleType: 'HU',
      PixelData: [pixels.buffer],
      _vrMap: { PixelData: 'OW' },
    };
    const raw = `${name(i)}.raw`;
    writeFileSync(raw, writePart10(ds));
    await runDcmcjpls(raw, `${name(i)}.tmp`);
    renameSync(`${name(i)}.tmp`, name(i));
    rmSync(raw);
  };
  // two compressions at a time: this machine has two cores
  let next = 0;
  await Promise.all([0, 1].map(async () => {
    while (next < slices) await make(next++);
  }));
  if (readdirSync(out).filter((f) => f.endsWith('.dcm')).length !== slices) throw new Error('reference CT: slices missing');
  writeFileSync(join(out, '.complete'), '');
  return { studyInstanceUid, seriesInstanceUid, files };
}
