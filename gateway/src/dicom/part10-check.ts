// Streaming check that a PACS part is one complete Part 10 instance, run on the bytes as they pass
// through the multipart writer: preamble + DICM + file meta group, then the dataset's element headers
// walked (values skipped, never held), so a file cut short (a truncated copy in the PACS, a PACS that
// dies mid-file) fails at its end instead of going out under a closing delimiter that says "complete".
// Memory stays a few bytes whatever the instance size; only the meta group (<64 KiB) is buffered.
import { readMeta, Part10Error } from './part10.js';
import { TS } from './transfer-syntax.js';

export interface PartExpectation {
  /** byte length announced by the PACS (Content-Length, file size) */
  length?: number;
  /** transfer syntax and SOP instance the part is announced as */
  transferSyntaxUid?: string;
  sopInstanceUid?: string;
}

/** Fed each chunk of a part's body, then told of its end; throws Part10Error when the part is not sound. */
export interface PartCheck {
  data(chunk: Buffer): void;
  end(): void;
}

const MAX_META = 64 * 1024;
const UNDEFINED = 0xffffffff;
const LONG_VRS = ['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV'];
const SHORT_VRS = ['AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'PN', 'SH', 'SL', 'SS', 'ST', 'TM', 'UI', 'UL', 'US'];
/** VRs whose value may have undefined length (sequences, encapsulated pixel data, unknown) */
const OPENABLE = ['SQ', 'OB', 'OW', 'UN'];
// the VR of every element header is looked up by its two bytes (no string made per element)
const KNOWN = 1, LONG = 2, OPEN = 4;
const VR_KIND = new Uint8Array(1 << 16);
const vrCode = (vr: string) => (vr.charCodeAt(0) << 8) | vr.charCodeAt(1);
for (const vr of SHORT_VRS) VR_KIND[vrCode(vr)] = KNOWN;
for (const vr of LONG_VRS) VR_KIND[vrCode(vr)] = KNOWN | LONG;
for (const vr of OPENABLE) VR_KIND[vrCode(vr)] |= OPEN;
const UN = vrCode('UN');

export function part10Check(expect: PartExpectation = {}): PartCheck {
  return new Part10StreamCheck(expect);
}

class Part10StreamCheck implements PartCheck {
  private total = 0;
  private head: Buffer[] | undefined = [];
  private headLength = 0;
  private explicit = true;
  private bigEndian = false;
  /** deflated datasets (or an undefined-length UN, whose content is implicit VR) are not walked */
  private walk = true;
  private skip = 0;
  private depth = 0;
  private padding = false;
  private readonly header = Buffer.alloc(12);
  private have = 0;

  constructor(private readonly expect: PartExpectation) {}

  data(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.expect.length !== undefined && this.total > this.expect.length) throw fail(`longer than the ${this.expect.length} bytes announced`);
    if (this.head) {
      this.head.push(chunk);
      this.headLength += chunk.length;
      const all = this.head.length === 1 ? chunk : Buffer.concat(this.head);
      const meta = readMeta(all);
      if (!meta) {
        if (this.headLength > MAX_META) throw fail('file meta group too large');
        return;
      }
      this.head = undefined;
      if (this.expect.transferSyntaxUid && meta.transferSyntaxUid !== this.expect.transferSyntaxUid) {
        throw fail(`meta says ${meta.transferSyntaxUid}, the part was announced as ${this.expect.transferSyntaxUid}`);
      }
      if (this.expect.sopInstanceUid && meta.sopInstanceUid && meta.sopInstanceUid !== this.expect.sopInstanceUid) {
        throw fail('meta names another SOP instance than the one announced');
      }
      const ts = meta.transferSyntaxUid;
      this.explicit = ts !== TS.ImplicitVRLittleEndian;
      this.bigEndian = ts === TS.ExplicitVRBigEndian;
      this.walk = ts !== TS.DeflatedExplicitVRLittleEndian;
      chunk = all.subarray(meta.datasetOffset);
    }
    if (this.walk) this.walkChunk(chunk);
  }

  end(): void {
    if (this.head) throw fail(this.total === 0 ? 'empty' : 'ended inside the file meta header');
    if (this.expect.length !== undefined && this.total !== this.expect.length) {
      throw fail(`${this.total} bytes where ${this.expect.length} were announced`);
    }
    if (!this.walk) return;
    if (this.skip > 0 || this.have > 0) throw fail(`ended inside an element (${this.skip || 'a header'}${this.skip ? ' bytes' : ''} missing)`);
    if (this.depth > 0) throw fail('ended inside a sequence or encapsulated pixel data');
  }

  private u16(b: Buffer, at: number): number {
    return this.bigEndian ? b.readUInt16BE(at) : b.readUInt16LE(at);
  }

  private u32(b: Buffer, at: number): number {
    return this.bigEndian ? b.readUInt32BE(at) : b.readUInt32LE(at);
  }

  private walkChunk(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.walk) {
      if (this.padding) {
        for (; pos < chunk.length; pos++) if (chunk[pos] !== 0) throw fail('bytes after the dataset end');
        return;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      // the usual case: the whole element header is in this chunk, read where it lies (no copy)
      if (this.have === 0 && chunk.length - pos >= 12) {
        const need = this.headerLength(chunk, pos, 12);
        this.element(chunk, pos);
        pos += need;
        continue;
      }
      // a header split across chunks: gather it (8 bytes, or 12 for an explicit VR with a 4-byte length)
      const need = this.headerLength(this.header, 0, this.have);
      if (this.have < need) {
        const n = Math.min(need - this.have, chunk.length - pos);
        for (let i = 0; i < n; i++) this.header[this.have + i] = chunk[pos + i];
        this.have += n;
        pos += n;
        if (this.have < need || this.headerLength(this.header, 0, this.have) > this.have) continue;
      }
      this.have = 0;
      this.element(this.header, 0);
    }
  }

  /** bytes of the header at `b[at]`, of which `have` are there: known from its first 6 bytes */
  private headerLength(b: Buffer, at: number, have: number): number {
    if (have < 6) return have < 4 ? 4 : 6;
    const group = this.u16(b, at);
    if (group === 0xfffe || !this.explicit) return 8;
    return VR_KIND[(b[at + 4] << 8) | b[at + 5]] & LONG ? 12 : 8;
  }

  /** reads the element header at `b[at]` (complete) and sets what to skip or open */
  private element(b: Buffer, at: number): void {
    const group = this.u16(b, at);
    const element = this.u16(b, at + 2);
    if (group === 0xfffe) {
      const len = this.u32(b, at + 4);
      if (element === 0xe000) {
        if (this.depth === 0) throw fail('item outside a sequence');
        if (len === UNDEFINED) this.depth++;
        else this.skip = len;
      } else if (element === 0xe00d || element === 0xe0dd) {
        if (this.depth === 0) throw fail('delimiter outside a sequence');
        this.depth--;
      } else {
        throw fail('malformed item tag');
      }
      return;
    }
    if (group === 0 && element === 0 && this.depth === 0 && b.readUInt32LE(at + 4) === 0) {
      this.padding = true; // trailing NUL padding some writers leave
      return;
    }
    let len: number;
    if (this.explicit) {
      const code = (b[at + 4] << 8) | b[at + 5];
      const kind = VR_KIND[code];
      if (!(kind & KNOWN)) throw fail('unparsable element (unknown VR)');
      len = kind & LONG ? this.u32(b, at + 8) : this.u16(b, at + 6);
      if (len === UNDEFINED) {
        if (!(kind & OPEN)) throw fail(`undefined length on a ${b.toString('latin1', at + 4, at + 6)} element`);
        if (code === UN) { this.walk = false; return; }
        this.depth++;
        return;
      }
    } else {
      len = this.u32(b, at + 4);
      if (len === UNDEFINED) { this.depth++; return; }
    }
    this.skip = len;
  }
}

function fail(what: string): Part10Error {
  return new Part10Error(`PACS part is not a complete Part 10 instance: ${what}`);
}
