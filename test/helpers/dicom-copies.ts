// Test data helpers: re-UIDed copies of sample files (several samples share SOP Instance UIDs), and a
// large synthetic multi-frame instance for streaming/memory tests.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dcmjs from 'dcmjs';

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;
dcmjs.log?.setLevel?.('error');

export interface CopyOptions {
  study?: string;
  series?: string;
  patientId?: string;
  patientName?: string;
  accession?: string;
  studyDate?: string;
  /** replace pixel data with `frames` frames of rows×cols 8-bit (uncompressed files only) */
  big?: { rows: number; cols: number; frames: number };
}

export function newUid(): string {
  return DicomMetaDictionary.uid() as string;
}

/**
 * A copy of a Part 10 file with a new SOP Instance UID (and the study/series/patient given), made by
 * dcmtk's dcmodify so pixel data (encapsulated fragments included) is left byte for byte as it was.
 */
export function copyDicom(src: string | Buffer, o: CopyOptions = {}): Buffer {
  if (o.big) return copyDicomDcmjs(src, o);
  const dir = mkdtempSync(join(tmpdir(), 'dcm-copy-'));
  try {
    const f = join(dir, 'x.dcm');
    writeFileSync(f, typeof src === 'string' ? readFileSync(src) : src);
    const args = ['-nb', '-q', '-gin'];
    const put = (tag: string, v: string | undefined) => { if (v !== undefined) args.push('-i', `(${tag})=${v}`); };
    put('0020,000D', o.study);
    put('0020,000E', o.series);
    put('0010,0020', o.patientId);
    put('0010,0010', o.patientName);
    put('0008,0050', o.accession);
    put('0008,0020', o.studyDate);
    execFileSync('dcmodify', [...args, f]);
    return readFileSync(f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function copyDicomDcmjs(src: string | Buffer, o: CopyOptions = {}): Buffer {
  const buf = typeof src === 'string' ? readFileSync(src) : src;
  const dicom = DicomMessage.readFile(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), { ignoreErrors: true });
  const d = dicom.dict as Record<string, { vr: string; Value?: unknown[] }>;
  const set = (tag: string, vr: string, v: unknown) => { d[tag] = { vr, Value: [v] }; };
  const sop = newUid();
  set('00080018', 'UI', sop);
  if (o.study) set('0020000D', 'UI', o.study);
  if (o.series) set('0020000E', 'UI', o.series);
  if (o.patientId !== undefined) set('00100020', 'LO', o.patientId);
  if (o.patientName !== undefined) set('00100010', 'PN', { Alphabetic: o.patientName });
  if (o.accession !== undefined) set('00080050', 'SH', o.accession);
  if (o.studyDate !== undefined) set('00080020', 'DA', o.studyDate);
  if (o.big) {
    set('00280010', 'US', o.big.rows);
    set('00280011', 'US', o.big.cols);
    set('00280008', 'IS', String(o.big.frames));
    set('00280100', 'US', 8); set('00280101', 'US', 8); set('00280102', 'US', 7); set('00280002', 'US', 1);
    const px = Buffer.alloc(o.big.rows * o.big.cols * o.big.frames);
    for (let i = 0; i < px.length; i += 4096) px[i] = (i >> 12) & 0xff;
    d['7FE00010'] = { vr: 'OB', Value: [px.buffer.slice(px.byteOffset, px.byteOffset + px.byteLength)] };
  }
  dicom.meta['00020003'] = { vr: 'UI', Value: [sop] };
  return Buffer.from(dicom.write({ allowInvalidVRLength: true }));
}

/** A UID of exactly `len` characters (2.25 form), so it can replace another in place. */
export function uidOfLength(len: number): string {
  let s = '2.25.' + String(1 + Math.floor(Math.random() * 9));
  while (s.length < len) s += String(Math.floor(Math.random() * 10));
  return s;
}

/** Fast re-UID of a big file: replace every occurrence of `oldUid` by a fresh UID of the same length. */
export function replaceUid(buf: Buffer, oldUid: string): { buf: Buffer; uid: string } {
  const uid = uidOfLength(oldUid.length);
  const out = Buffer.from(buf);
  const from = Buffer.from(oldUid, 'latin1');
  let at = out.indexOf(from);
  const limit = 64 * 1024; // UIDs live in the header, before the pixel data
  while (at >= 0 && at < limit) {
    out.write(uid, at, 'latin1');
    at = out.indexOf(from, at + from.length);
  }
  return { buf: out, uid };
}
