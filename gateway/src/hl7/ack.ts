// ACK / NACK construction (HL7 v2.5 "original mode" acknowledgement): MSH + MSA, plus ERR when the
// message is refused. ERR-8 carries a plain-language sentence: the RIS shows it to people.
import { randomUUID } from 'node:crypto';
import { DEFAULT_DELIMITERS, encodeEscapes, type Hl7Message } from './message.js';
import { ERROR_TEXT, type Hl7ErrorCode } from './rejection.js';

export interface AckError {
  errorCode: Hl7ErrorCode;
  /** ERR-2, e.g. `PID^1^3` */
  location?: string;
  message: string;
}

export interface AckOptions {
  /** the message being acknowledged, when it could be parsed at all */
  original?: Hl7Message;
  code: 'AA' | 'AE' | 'AR';
  error?: AckError;
  /** our application / facility names (MSH-3/4) when the original gives none */
  application?: string;
  facility?: string;
  now?: Date;
}

function hl7Time(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}+0000`;
}

/** Build the acknowledgement text (segments separated by CR, no MLLP framing). */
export function buildAck(opts: AckOptions): string {
  const o = opts.original;
  const d = o?.delimiters ?? DEFAULT_DELIMITERS;
  const esc = (v: string) => encodeEscapes(v, d);
  const enc = d.component + d.repetition + d.escape + d.subcomponent;
  const rawOr = (n: number, dflt: string) => (o ? o.msh.raw(n) : '') || dflt;
  const event = o?.messageType.event || '';
  const version = o?.version || '2.5';
  const msh = [
    'MSH', enc,
    rawOr(5, esc(opts.application ?? 'DRIMBOX')), // we answer as the receiver of the original
    rawOr(6, esc(opts.facility ?? '')),
    o ? o.msh.raw(3) : '',
    o ? o.msh.raw(4) : '',
    hl7Time(opts.now ?? new Date()),
    '',
    `ACK${d.component}${esc(event)}${d.component}ACK`,
    randomUUID().replace(/-/g, '').slice(0, 20),
    o ? o.msh.raw(11) || 'P' : 'P',
    version,
    '', '', '', '', '',
    o ? o.msh.raw(18) : 'UNICODE UTF-8',
  ];
  // trim trailing empty fields
  while (msh.length > 12 && msh[msh.length - 1] === '') msh.pop();
  const segs = [msh.join(d.field)];
  const controlId = o ? o.msh.raw(10) : '';
  const msaText = opts.error ? esc(opts.error.message).slice(0, 80) : '';
  segs.push(['MSA', opts.code, controlId, msaText].join(d.field).replace(new RegExp(`\\${d.field}+$`), ''));
  if (opts.error && opts.code !== 'AA') {
    const e = opts.error;
    const c = d.component;
    segs.push([
      'ERR',
      '',
      e.location ?? '',
      `${e.errorCode}${c}${esc(ERROR_TEXT[e.errorCode])}${c}HL70357`,
      'E',
      '', '', '',
      esc(e.message),
    ].join(d.field));
  }
  return segs.join('\r') + '\r';
}

/** Read an ACK back (used by tests and by anything that sends HL7). */
export function readAck(msg: Hl7Message): { code: string; controlId: string; errorCode?: string; location?: string; text?: string } {
  const msa = msg.first('MSA');
  const err = msg.first('ERR');
  return {
    code: msa?.get(1) ?? '',
    controlId: msa?.get(2) ?? '',
    errorCode: err?.get(3, 1) || undefined,
    location: err ? err.raw(2) || undefined : undefined,
    text: err?.get(8) || msa?.get(3) || undefined,
  };
}
