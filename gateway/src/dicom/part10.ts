// Reading Part 10 files without decoding pixels: the file meta header (from a stream prefix), the few
// attributes an index needs, DICOM JSON for metadata, and one frame's pixel data (native or
// encapsulated). Pure: works on Buffers and Readables handed in, never opens files.
import type { Readable } from 'node:stream';
import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import dcmjs from 'dcmjs';
import { TS, isEncapsulated } from './transfer-syntax.js';
import type { DicomJson } from '../pacs/pacs.js';

/** Not a readable Part 10 file (no DICM prefix, broken meta, truncated before what was asked). */
export class Part10Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Part10Error';
  }
}

export interface Part10Meta {
  transferSyntaxUid: string;
  sopClassUid: string;
  sopInstanceUid: string;
  /** byte offset where the dataset (after group 0002) starts */
  datasetOffset: number;
}

const PREAMBLE = 128;
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);

function uidString(b: Buffer): string {
  return b.toString('latin1').replace(/[\0 ]+$/, '').trim();
}

/**
 * Parses the preamble and the file meta group. Returns undefined when `buf` is a prefix too short to
 * hold the whole meta group; throws Part10Error when it is not Part 10.
 */
export function readMeta(buf: Buffer): Part10Meta | undefined {
  if (buf.length < PREAMBLE + 4) return undefined;
  if (buf.toString('latin1', PREAMBLE, PREAMBLE + 4) !== 'DICM') throw new Part10Error('not a DICOM Part 10 file (no DICM prefix)');
  let pos = PREAMBLE + 4;
  let end = Infinity;
  const out: Partial<Part10Meta> = {};
  for (;;) {
    if (pos >= end) break;
    if (pos + 8 > buf.length) return undefined;
    const group = buf.readUInt16LE(pos);
    if (group !== 0x0002) break; // meta without group length: stop at the first dataset element
    const element = buf.readUInt16LE(pos + 2);
    const vr = buf.toString('latin1', pos + 4, pos + 6);
    let len: number;
    let valueAt: number;
    if (LONG_VRS.has(vr)) {
      if (pos + 12 > buf.length) return undefined;
      len = buf.readUInt32LE(pos + 8);
      valueAt = pos + 12;
    } else {
      len = buf.readUInt16LE(pos + 6);
      valueAt = pos + 8;
    }
    if (len === 0xffffffff) throw new Part10Error('undefined length in file meta group');
    if (valueAt + len > buf.length) return undefined;
    const value = buf.subarray(valueAt, valueAt + len);
    if (element === 0x0000 && len === 4) end = valueAt + 4 + value.readUInt32LE(0);
    else if (element === 0x0002) out.sopClassUid = uidString(value);
    else if (element === 0x0003) out.sopInstanceUid = uidString(value);
    else if (element === 0x0010) out.transferSyntaxUid = uidString(value);
    pos = valueAt + len;
    if (pos > 1 << 20) throw new Part10Error('file meta group too large');
  }
  if (!out.transferSyntaxUid) throw new Part10Error('file meta group has no transfer syntax');
  return { transferSyntaxUid: out.transferSyntaxUid, sopClassUid: out.sopClassUid ?? '', sopInstanceUid: out.sopInstanceUid ?? '', datasetOffset: pos };
}

/**
 * Reads a stream's first chunks until its Part 10 meta header parses, then puts them back: the
 * returned `body` is the very stream handed in, paused, with every byte (prefix included) still to
 * come. No stream layer is added, so backpressure and destruction stay the caller's own (the hot
 * retrieve path hands a multipart reader's part body on). On failure `body` is destroyed.
 */
export function peekMeta(body: Readable, maxBytes = 1 << 20): Promise<{ meta: Part10Meta; body: Readable }> {
  return new Promise((resolve, reject) => {
    const head: Buffer[] = [];
    let size = 0;
    const done = (err: Error | undefined, meta?: Part10Meta) => {
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) {
        body.destroy();
        reject(err);
      } else resolve({ meta: meta!, body });
    };
    const onData = (c: Buffer) => {
      head.push(c);
      size += c.length;
      const all = head.length === 1 ? head[0] : Buffer.concat(head);
      let meta: Part10Meta | undefined;
      try {
        meta = readMeta(all);
      } catch (e) {
        done(e as Error);
        return;
      }
      if (meta) {
        body.pause();
        body.unshift(all);
        done(undefined, meta);
      } else if (size > maxBytes) {
        done(new Part10Error('Part 10 meta header too large'));
      }
    };
    const onEnd = () => done(new Part10Error('stream ended inside the Part 10 meta header'));
    const onError = (e: Error) => done(e);
    const onClose = () => done(new Part10Error('stream closed inside the Part 10 meta header'));
    body.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    body.resume();
  });
}

function metaElement(group: number, element: number, vr: string, value: Buffer): Buffer {
  const long = LONG_VRS.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(value.length, 8);
  else h.writeUInt16LE(value.length, 6);
  return Buffer.concat([h, value]);
}

function uidValue(uid: string): Buffer {
  return Buffer.from(uid.length % 2 ? uid + '\0' : uid, 'latin1');
}

export const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1468.1';
export const IMPLEMENTATION_VERSION = 'DRIMBOX_0_1';

/** Preamble + DICM + file meta group for a dataset encoded in `transferSyntaxUid`. */
export function buildMeta(m: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string; sourceAet?: string }): Buffer {
  const ae = (s: string) => { const v = s.slice(0, 16); return Buffer.from(v.length % 2 ? v + ' ' : v, 'latin1'); };
  const elems = [
    metaElement(2, 0x0001, 'OB', Buffer.from([0, 1])),
    metaElement(2, 0x0002, 'UI', uidValue(m.sopClassUid)),
    metaElement(2, 0x0003, 'UI', uidValue(m.sopInstanceUid)),
    metaElement(2, 0x0010, 'UI', uidValue(m.transferSyntaxUid)),
    metaElement(2, 0x0012, 'UI', uidValue(IMPLEMENTATION_CLASS_UID)),
    metaElement(2, 0x0013, 'SH', ae(IMPLEMENTATION_VERSION)),
  ];
  if (m.sourceAet) elems.push(metaElement(2, 0x0016, 'AE', ae(m.sourceAet)));
  const body = Buffer.concat(elems);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(body.length, 0);
  return Buffer.concat([Buffer.alloc(PREAMBLE), Buffer.from('DICM'), metaElement(2, 0, 'UL', len), body]);
}

/** The attributes the folder index and the adapters need; strings already trimmed, '' when absent. */
export interface Part10Info {
  transferSyntaxUid: string;
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  patientId: string;
  patientName: string;
  patientBirthDate: string;
  patientSex: string;
  studyDate: string;
  studyTime: string;
  studyId: string;
  accessionNumber: string;
  studyDescription: string;
  referringPhysicianName: string;
  modality: string;
  seriesNumber: number | undefined;
  seriesDescription: string;
  instanceNumber: number | undefined;
  numberOfFrames: number;
  rows: number | undefined;
  columns: number | undefined;
  specificCharacterSet: string;
  /** offset of the Pixel Data element (tag start) in the buffer, when present */
  pixelDataOffset: number | undefined;
}

function inflater(arr: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(arr.subarray(position));
  const out = new Uint8Array(position + inflated.length);
  out.set(arr.subarray(0, position));
  out.set(inflated, position);
  return out;
}

function decoderFor(charset: string): TextDecoder {
  return new TextDecoder(/ISO_IR 192|ISO 2022 IR 192/.test(charset) ? 'utf-8' : 'latin1');
}

function parse(buf: Buffer, untilPixelData: boolean): dicomParser.DataSet {
  const u8 = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  try {
    return dicomParser.parseDicom(u8, untilPixelData ? { untilTag: 'x7fe00010', inflater } : { inflater });
  } catch (e) {
    throw new Part10Error(`cannot parse DICOM: ${typeof e === 'string' ? e : (e as Error)?.message ?? String(e)}`);
  }
}

/**
 * Index attributes of a Part 10 buffer (parsing stops at Pixel Data). With `prefix: true`, `buf` may be
 * the start of the file: when Pixel Data was not reached it throws Part10Error — read more, or the whole
 * file (instances without pixel data), and retry.
 */
export function readInfo(buf: Buffer, opts: { prefix?: boolean } = {}): Part10Info {
  const meta = readMeta(buf);
  if (!meta) throw new Part10Error('truncated in the file meta header');
  const ds = parse(buf, true);
  if (opts.prefix && !ds.elements.x7fe00010) throw new Part10Error('prefix ends before Pixel Data: read more');
  const charset = ds.string('x00080005') ?? '';
  const dec = decoderFor(charset);
  const bytes = ds.byteArray; // the inflated dataset for deflated syntaxes
  const str = (tag: string): string => {
    const el = ds.elements[tag];
    if (!el || !el.length) return '';
    return dec.decode(bytes.subarray(el.dataOffset, el.dataOffset + el.length)).replace(/[\0 ]+$/, '').trim();
  };
  const int = (tag: string): number | undefined => {
    const s = str(tag);
    const n = s ? parseInt(s, 10) : NaN;
    return Number.isFinite(n) ? n : undefined;
  };
  const us = (tag: string): number | undefined => (ds.elements[tag] ? ds.uint16(tag) : undefined);
  const pixel = ds.elements.x7fe00010;
  const deflated = meta.transferSyntaxUid === TS.DeflatedExplicitVRLittleEndian;
  return {
    transferSyntaxUid: meta.transferSyntaxUid,
    sopClassUid: meta.sopClassUid || str('x00080016'),
    sopInstanceUid: str('x00080018') || meta.sopInstanceUid,
    studyInstanceUid: str('x0020000d'),
    seriesInstanceUid: str('x0020000e'),
    patientId: str('x00100020'),
    patientName: str('x00100010'),
    patientBirthDate: str('x00100030'),
    patientSex: str('x00100040'),
    studyDate: str('x00080020'),
    studyTime: str('x00080030'),
    studyId: str('x00200010'),
    accessionNumber: str('x00080050'),
    studyDescription: str('x00081030'),
    referringPhysicianName: str('x00080090'),
    modality: str('x00080060'),
    seriesNumber: int('x00200011'),
    seriesDescription: str('x0008103e'),
    instanceNumber: int('x00200013'),
    numberOfFrames: int('x00280008') ?? 1,
    rows: us('x00280010'),
    columns: us('x00280011'),
    specificCharacterSet: charset,
    // dicom-parser stops at the tag: dataOffset is past the header (12 bytes explicit, 8 implicit)
    pixelDataOffset: pixel && !deflated ? pixel.dataOffset - (meta.transferSyntaxUid === TS.ImplicitVRLittleEndian ? 8 : 12) : undefined,
  };
}

/** A frame number the instance does not have (the answer is then 404, not a failure). */
export class FrameRangeError extends RangeError {
  constructor(readonly frame: number, readonly frames: number) {
    super(`frame ${frame} does not exist: the instance has ${frames} frame${frames === 1 ? '' : 's'}`);
    this.name = 'FrameRangeError';
  }
}

/** One frame's bytes, as WADO-RS serves it (native frames little endian). 1-based frame number. */
export function extractFrame(buf: Buffer, frameNumber: number): { transferSyntaxUid: string; data: Buffer } {
  const meta = readMeta(buf);
  if (!meta) throw new Part10Error('truncated in the file meta header');
  const ds = parse(buf, false);
  const pixel = ds.elements.x7fe00010;
  if (!pixel) throw new Part10Error('instance has no pixel data');
  const frames = parseInt(ds.string('x00280008') ?? '1', 10) || 1;
  if (!Number.isInteger(frameNumber) || frameNumber < 1 || frameNumber > frames) throw new FrameRangeError(frameNumber, frames);
  const idx = frameNumber - 1;
  const ts = meta.transferSyntaxUid;
  if (isEncapsulated(ts)) {
    const fragments = pixel.fragments ?? [];
    let u8: Uint8Array;
    if (frames === 1) u8 = dicomParser.readEncapsulatedPixelDataFromFragments(ds, pixel, 0, fragments.length);
    else if (pixel.basicOffsetTable && pixel.basicOffsetTable.length) u8 = dicomParser.readEncapsulatedImageFrame(ds, pixel, idx);
    else if (fragments.length === frames) u8 = dicomParser.readEncapsulatedPixelDataFromFragments(ds, pixel, idx, 1);
    else if (ts.startsWith('1.2.840.10008.1.2.4.5') || ts.startsWith('1.2.840.10008.1.2.4.7')) {
      u8 = dicomParser.readEncapsulatedImageFrame(ds, pixel, idx, dicomParser.createJPEGBasicOffsetTable(ds, pixel));
    } else throw new Part10Error('cannot locate frame: no offset table and fragments do not map to frames');
    return { transferSyntaxUid: ts, data: Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength) };
  }
  const rows = ds.uint16('x00280010') ?? 0;
  const cols = ds.uint16('x00280011') ?? 0;
  const spp = ds.uint16('x00280002') ?? 1;
  const bits = ds.uint16('x00280100') ?? 16;
  const frameBits = rows * cols * spp * bits;
  if (frameBits % 8 !== 0 && frames > 1) throw new Part10Error('frames are not byte-aligned');
  const frameBytes = Math.ceil(frameBits / 8);
  const start = pixel.dataOffset + frameBytes * idx;
  if (start + frameBytes > pixel.dataOffset + pixel.length) throw new Part10Error('pixel data shorter than the frames it declares');
  let data = Buffer.from(ds.byteArray.subarray(start, start + frameBytes));
  if (ts === TS.ExplicitVRBigEndian && bits === 16) data = data.swap16();
  return { transferSyntaxUid: ts === TS.ExplicitVRBigEndian || ts === TS.DeflatedExplicitVRLittleEndian ? TS.ExplicitVRLittleEndian : ts, data };
}

const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const INLINE_LIMIT = 1024;

/**
 * DICOM JSON of a Part 10 buffer (group 0002 left out). Pass a prefix ending before Pixel Data to keep
 * memory low; Pixel Data is then described from `pixelData`. Binary values larger than 1 KiB become
 * BulkDataURI `bulk/<tag>` (relative to the instance), smaller ones InlineBinary.
 */
export function toDicomJson(buf: Buffer, pixelData?: { vr: 'OB' | 'OW' }): DicomJson {
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  let dict: Record<string, { vr: string; Value?: unknown[] }>;
  try {
    dict = dcmjs.data.DicomMessage.readFile(ab, { ignoreErrors: true, untilTag: '7FE00010', includeUntilTagValue: false }).dict;
  } catch (e) {
    throw new Part10Error(`cannot parse DICOM: ${(e as Error)?.message ?? String(e)}`);
  }
  const out = convert(dict, '', pixelData?.vr ?? 'OW');
  if (pixelData && !out['7FE00010']) out['7FE00010'] = { vr: pixelData.vr, BulkDataURI: 'bulk/7FE00010' };
  return out;
}

function convert(dict: Record<string, { vr: string; Value?: unknown[] }>, path: string, pixelVr: string): DicomJson {
  const out: DicomJson = {};
  for (const tag of Object.keys(dict).sort()) {
    const el = dict[tag];
    const t = tag.toUpperCase();
    if (t.startsWith('0002')) continue;
    if (t === '7FE00010') { out[t] = { vr: el.vr || pixelVr, BulkDataURI: `bulk/${path}${t}` }; continue; }
    if (el.vr === 'SQ') {
      out[t] = { vr: 'SQ', Value: (el.Value ?? []).map((item, i) => convert(item as Record<string, { vr: string; Value?: unknown[] }>, `${path}${t}/${i + 1}/`, pixelVr)) };
      continue;
    }
    if (BINARY_VRS.has(el.vr)) {
      const parts = (el.Value ?? []).map((v) => Buffer.from(v as ArrayBuffer));
      const bytes = Buffer.concat(parts);
      out[t] = bytes.length > INLINE_LIMIT ? { vr: el.vr, BulkDataURI: `bulk/${path}${t}` } : bytes.length ? { vr: el.vr, InlineBinary: bytes.toString('base64') } : { vr: el.vr };
      continue;
    }
    const v = el.Value?.map(tidy);
    out[t] = v && v.length && !(v.length === 1 && (v[0] === '' || v[0] === null)) ? { vr: el.vr, Value: v } : { vr: el.vr };
  }
  return out;
}

/** dcmjs keeps the space padding of string values */
function tidy(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/[\0 ]+$/, '');
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const t = typeof x === 'string' ? x.trim() : x;
      if (t !== '') o[k] = t;
    }
    return Object.keys(o).length ? o : null;
  }
  return v;
}
