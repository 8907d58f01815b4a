// A small, fast Part 10 writer (explicit VR little endian, defined lengths) for datasets given as
// dcmjs-style naturalized objects ({ Keyword: value | [items] }). dcmjs's own writer takes seconds for
// a 2,000-instance manifest; this takes milliseconds. Keywords → tag/VR come from dcmjs's dictionary.
import dcmjs from 'dcmjs';

const { DicomMetaDictionary } = dcmjs.data;

type Entry = { tag: number; vr: string };
const cache = new Map<string, Entry>();
function entry(keyword: string): Entry {
  let e = cache.get(keyword);
  if (e) return e;
  const d = DicomMetaDictionary.nameMap[keyword];
  if (!d) throw new Error(`Unknown DICOM keyword ${keyword}`);
  const m = /^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$/.exec(d.tag as string);
  if (!m) throw new Error(`Bad tag for ${keyword}`);
  const vr = String(d.vr).slice(0, 2); // "US or SS", "OB or OW": first choice
  e = { tag: (parseInt(m[1], 16) << 16) | parseInt(m[2], 16), vr };
  cache.set(keyword, e);
  return e;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

export type DsValue = string | number | string[] | number[] | ArrayBuffer | Uint8Array | Dataset[] | undefined | null;
export interface Dataset {
  [keyword: string]: DsValue;
}

// One growing buffer; sequence and item lengths are back-patched once their content is written.
class Writer {
  buf = Buffer.allocUnsafe(1 << 16);
  pos = 0;
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = Buffer.allocUnsafe(size);
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }
  /** element header; returns the offset of its length field */
  header(tag: number, vr: string, len: number): number {
    this.ensure(12);
    const b = this.buf;
    b.writeUInt16LE(tag >>> 16, this.pos);
    b.writeUInt16LE(tag & 0xffff, this.pos + 2);
    b[this.pos + 4] = vr.charCodeAt(0);
    b[this.pos + 5] = vr.charCodeAt(1);
    if (LONG_VRS.has(vr)) {
      b.writeUInt16LE(0, this.pos + 6);
      b.writeUInt32LE(len, this.pos + 8);
      this.pos += 12;
      return this.pos - 4;
    }
    if (len > 0xffff) throw new Error(`Value too long for VR ${vr}`);
    b.writeUInt16LE(len, this.pos + 6);
    this.pos += 8;
    return this.pos - 2;
  }
  item(tag: number): number {
    this.ensure(8);
    this.buf.writeUInt16LE(0xfffe, this.pos);
    this.buf.writeUInt16LE(tag, this.pos + 2);
    this.buf.writeUInt32LE(0, this.pos + 4);
    this.pos += 8;
    return this.pos - 4;
  }
  patch32(at: number, len: number): void {
    this.buf.writeUInt32LE(len, at);
  }
}

function writeValue(w: Writer, tag: number, vr: string, v: DsValue): void {
  if (v === undefined || v === null) {
    w.header(tag, vr, 0);
    return;
  }
  if (v instanceof ArrayBuffer || v instanceof Uint8Array) {
    const bytes = v instanceof ArrayBuffer ? new Uint8Array(v) : v;
    const len = bytes.length + (bytes.length % 2);
    w.header(tag, vr, len);
    w.ensure(len);
    w.buf.set(bytes, w.pos);
    if (len > bytes.length) w.buf[w.pos + bytes.length] = 0;
    w.pos += len;
    return;
  }
  const list = (Array.isArray(v) ? v : [v]) as (string | number)[];
  if (vr === 'US' || vr === 'UL') {
    const size = vr === 'US' ? 2 : 4;
    w.header(tag, vr, size * list.length);
    w.ensure(size * list.length);
    for (const n of list) {
      if (size === 2) w.buf.writeUInt16LE(Number(n), w.pos);
      else w.buf.writeUInt32LE(Number(n), w.pos);
      w.pos += size;
    }
    return;
  }
  const str = list.length === 1 ? String(list[0]) : list.map(String).join('\\');
  const enc = vr === 'UI' ? 'latin1' : 'utf8';
  const n = Buffer.byteLength(str, enc);
  const len = n + (n % 2);
  w.header(tag, vr, len);
  w.ensure(len);
  w.buf.write(str, w.pos, enc);
  if (len > n) w.buf[w.pos + n] = vr === 'UI' ? 0 : 0x20;
  w.pos += len;
}

type El = { k: string; tag: number; vr: string };
// Elements in tag order. Objects built in tag order (the hot path: thousands of small items) are
// written without sorting; others are sorted once per shape.
const shapes = new Map<string, El[]>();
function order(ds: Dataset): Iterable<El> {
  const els: El[] = [];
  let sorted = true;
  let prev = -1;
  for (const k in ds) {
    const e = entry(k);
    const tag = e.tag >>> 0;
    if (tag < prev) sorted = false;
    prev = tag;
    els.push({ k, tag: e.tag, vr: e.vr });
  }
  if (sorted) return els;
  const sig = els.map((e) => e.k).join(',');
  let o = shapes.get(sig);
  if (!o) {
    o = els.slice().sort((a, b) => (a.tag >>> 0) - (b.tag >>> 0));
    shapes.set(sig, o);
  }
  return o;
}

function writeDataset(w: Writer, ds: Dataset): void {
  for (const { k, tag, vr } of order(ds)) {
    const v = ds[k];
    if (v === undefined) continue;
    if (vr === 'SQ') {
      const lenAt = w.header(tag, 'SQ', 0);
      const seqStart = w.pos;
      for (const item of (Array.isArray(v) ? v : []) as Dataset[]) {
        const itemLenAt = w.item(0xe000);
        const itemStart = w.pos;
        writeDataset(w, item);
        w.patch32(itemLenAt, w.pos - itemStart);
      }
      w.patch32(lenAt, w.pos - seqStart);
      continue;
    }
    writeValue(w, tag, vr, v);
  }
}

/** Part 10 file: preamble, DICM, group 2 (explicit VR LE), then the dataset in explicit VR LE. */
export function encodePart10(meta: Dataset, ds: Dataset): Buffer {
  const w = new Writer();
  w.ensure(132);
  w.buf.fill(0, 0, 128);
  w.buf.write('DICM', 128, 'latin1');
  w.pos = 132;
  w.header(0x00020000, 'UL', 4);
  const groupLenAt = w.pos;
  w.ensure(4);
  w.pos += 4;
  const metaStart = w.pos;
  writeDataset(w, meta);
  w.buf.writeUInt32LE(w.pos - metaStart, groupLenAt);
  writeDataset(w, ds);
  return Buffer.from(w.buf.subarray(0, w.pos));
}
