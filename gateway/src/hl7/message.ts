// HL7 v2 (ER7, "pipe") message parsing: delimiters from MSH, segments, fields, repetitions,
// components, subcomponents, escape sequences. Values are decoded only at the leaf, after splitting,
// so an escaped delimiter (\F\, \S\, ...) never splits anything.
import { Hl7Rejection } from './rejection.js';

export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;

export class Hl7Segment {
  /** fields[n] is field n as raw (still escaped) text; fields[0] is the segment name.
   *  For MSH, fields[1] is the field separator and fields[2] the encoding characters, as in the standard. */
  constructor(readonly fields: string[], private readonly d: Delimiters) {}

  get name(): string {
    return this.fields[0];
  }

  /** raw text of field n (repetitions not split), '' when absent */
  raw(n: number): string {
    return this.fields[n] ?? '';
  }

  /** raw text of each repetition of field n ([] when empty) */
  repetitions(n: number): string[] {
    const f = this.raw(n);
    if (this.name === 'MSH' && n <= 2) return f ? [f] : [];
    return f === '' ? [] : f.split(this.d.repetition);
  }

  /** decoded value of field n, component c (1-based), subcomponent s (1-based), repetition r (0-based) */
  get(n: number, c = 1, s = 1, r = 0): string {
    if (this.name === 'MSH' && n <= 2) return this.raw(n);
    const rep = this.repetitions(n)[r];
    if (rep === undefined) return '';
    return componentOf(rep, this.d, c, s);
  }

  /** decoded components of one repetition (1-based array: index 0 unused) */
  components(n: number, r = 0): string[] {
    const rep = this.repetitions(n)[r] ?? '';
    return ['', ...rep.split(this.d.component).map((c) => decodeEscapes(c.split(this.d.subcomponent)[0], this.d))];
  }
}

/** component c, subcomponent s of one raw repetition, decoded */
export function componentOf(rep: string, d: Delimiters, c = 1, s = 1): string {
  const comp = rep.split(d.component)[c - 1];
  if (comp === undefined) return '';
  const sub = comp.split(d.subcomponent)[s - 1];
  return sub === undefined ? '' : decodeEscapes(sub, d);
}

/** HL7 escape sequences: \F\ \S\ \T\ \R\ \E\ \Xhh..\ (hex bytes, UTF-8), \.br\ ; highlight codes dropped. */
export function decodeEscapes(v: string, d: Delimiters): string {
  const e = d.escape;
  if (!e || !v.includes(e)) return v;
  let out = '';
  let i = 0;
  while (i < v.length) {
    const ch = v[i];
    if (ch !== e) {
      out += ch;
      i++;
      continue;
    }
    const end = v.indexOf(e, i + 1);
    if (end < 0) {
      out += v.slice(i); // unterminated escape: keep literally
      break;
    }
    const code = v.slice(i + 1, end);
    i = end + 1;
    switch (code) {
      case 'F': out += d.field; break;
      case 'S': out += d.component; break;
      case 'T': out += d.subcomponent; break;
      case 'R': out += d.repetition; break;
      case 'E': out += d.escape; break;
      case 'H': case 'N': break;
      case '.br': out += '\n'; break;
      default:
        if (/^X([0-9A-Fa-f]{2})+$/.test(code)) out += Buffer.from(code.slice(1), 'hex').toString('utf8');
        else out += e + code + e;
    }
  }
  return out;
}

/** Escape a value for writing into an HL7 field. */
export function encodeEscapes(v: string, d: Delimiters): string {
  const map: Record<string, string> = {
    [d.escape]: 'E', [d.field]: 'F', [d.component]: 'S', [d.subcomponent]: 'T', [d.repetition]: 'R',
  };
  let out = '';
  for (const ch of v) {
    if (ch === '\r' || ch === '\n') out += `${d.escape}.br${d.escape}`;
    else if (map[ch]) out += d.escape + map[ch] + d.escape;
    else out += ch;
  }
  return out;
}

export const DEFAULT_DELIMITERS: Delimiters = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

export class Hl7Message {
  constructor(readonly segments: Hl7Segment[], readonly delimiters: Delimiters) {}

  get msh(): Hl7Segment {
    return this.segments[0];
  }
  /** MSH-9 parts */
  get messageType(): { code: string; event: string; structure: string } {
    return { code: this.msh.get(9, 1), event: this.msh.get(9, 2), structure: this.msh.get(9, 3) };
  }
  get controlId(): string {
    return this.msh.get(10);
  }
  get version(): string {
    return this.msh.get(12);
  }

  all(name: string): Hl7Segment[] {
    return this.segments.filter((s) => s.name === name);
  }
  first(name: string): Hl7Segment | undefined {
    return this.segments.find((s) => s.name === name);
  }
  /** 1-based occurrence index of a segment among those with the same name (for ERR-2 locations) */
  occurrence(seg: Hl7Segment): number {
    return this.all(seg.name).indexOf(seg) + 1;
  }
}

/**
 * Parse one ER7 message. Segment separator: CR (standard), LF or CRLF accepted. Lines that do not
 * start with a segment name continue the previous segment (Base64 wrapped by a sender); ADD
 * segments are appended to the previous segment's last field.
 */
export function parseHl7(raw: string): Hl7Message {
  const text = raw.replace(/^\uFEFF/, '').replace(/^[\s\x0b]+/, '').replace(/[\s\x1c]+$/, '');
  if (!text.startsWith('MSH')) {
    throw new Hl7Rejection({ code: 'AR', errorCode: 100, location: 'MSH', message: 'The message does not start with an MSH segment.' });
  }
  if (text.length < 8) {
    throw new Hl7Rejection({ code: 'AR', errorCode: 100, location: 'MSH', message: 'The MSH segment is truncated.' });
  }
  const field = text[3];
  const enc = text.slice(4, text.indexOf(field, 4) < 0 ? 8 : text.indexOf(field, 4));
  if (enc.length < 4 || /[A-Za-z0-9\r\n]/.test(field + enc)) {
    throw new Hl7Rejection({ code: 'AR', errorCode: 102, location: 'MSH^1^2', message: 'MSH-2 does not hold the four encoding characters (expected ^~\\&).' });
  }
  const d: Delimiters = { field, component: enc[0], repetition: enc[1], escape: enc[2], subcomponent: enc[3] };

  // With CR present, CR alone separates segments and lone LFs are wrapping; without CR, LF separates.
  const lines = text.includes('\r') ? text.split(/\r\n?/) : text.split('\n');
  const joined: string[] = [];
  for (const line0 of lines) {
    const line = line0.replace(/\n/g, '');
    if (line.trim() === '') continue;
    const name = line.slice(0, 3);
    const isSegment = SEGMENT_NAME.test(name) && (line.length === 3 || line[3] === field);
    if (!isSegment && joined.length > 0) {
      joined[joined.length - 1] += line.trim();
      continue;
    }
    if (name === 'ADD' && joined.length > 0) {
      joined[joined.length - 1] += line.slice(4);
      continue;
    }
    if (!isSegment) {
      throw new Hl7Rejection({ code: 'AR', errorCode: 100, location: '', message: `Unreadable segment: "${line.slice(0, 20)}".` });
    }
    joined.push(line);
  }
  const segments = joined.map((line) => {
    const parts = line.split(field);
    if (parts[0] === 'MSH') parts.splice(1, 0, field); // MSH-1 is the separator itself
    return new Hl7Segment(parts, d);
  });
  const msg = new Hl7Message(segments, d);
  if (!msg.msh.get(9, 1)) {
    throw new Hl7Rejection({ code: 'AR', errorCode: 101, location: 'MSH^1^9', message: 'MSH-9 (message type) is empty.' });
  }
  return msg;
}
