// WADO-RS content negotiation (PS3.18 §8.7): which transfer syntaxes a client accepts, in order of
// preference, from its Accept header. Pure: no I/O.

/** Explicit VR Little Endian: the default transfer syntax of application/dicom (PS3.18 §8.7.3.5.2). */
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
export const ANY_TRANSFER_SYNTAX = '*';

export class AcceptError extends Error {
  constructor(readonly status: 400 | 406, message: string) {
    super(message);
    this.name = 'AcceptError';
  }
}

export interface MediaRange {
  type: string;          // e.g. multipart/related, application/dicom, */*
  params: Record<string, string>;
  q: number;
}

const MAX_ACCEPT_LENGTH = 8192;
const MAX_RANGES = 64;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/;

/** Parses an Accept header; throws AcceptError(400) when it is too large or malformed. */
export function parseAccept(header: string | undefined): MediaRange[] {
  if (header === undefined || header.trim() === '') return [{ type: '*/*', params: {}, q: 1 }];
  if (header.length > MAX_ACCEPT_LENGTH) throw new AcceptError(400, `Accept header longer than ${MAX_ACCEPT_LENGTH} characters`);
  const ranges: MediaRange[] = [];
  for (const item of splitOutsideQuotes(header, ',')) {
    if (item.trim() === '') continue;
    const [typePart, ...paramParts] = splitOutsideQuotes(item, ';');
    const type = typePart.trim().toLowerCase();
    if (!TOKEN.test(type)) throw new AcceptError(400, `malformed media range in Accept: "${type.slice(0, 80)}"`);
    const params: Record<string, string> = {};
    let q = 1;
    for (const p of paramParts) {
      const eq = p.indexOf('=');
      if (eq < 0) throw new AcceptError(400, `malformed parameter in Accept: "${p.trim().slice(0, 80)}"`);
      const name = p.slice(0, eq).trim().toLowerCase();
      let value = p.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      if (name === 'q') {
        if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(value)) throw new AcceptError(400, `bad q-value in Accept: "${value.slice(0, 20)}"`);
        q = Number(value);
      } else {
        params[name] = value;
      }
    }
    ranges.push({ type, params, q });
    if (ranges.length > MAX_RANGES) throw new AcceptError(400, `more than ${MAX_RANGES} media ranges in Accept`);
  }
  if (ranges.length === 0) return [{ type: '*/*', params: {}, q: 1 }];
  return ranges;
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) { out.push(cur); cur = ''; } else cur += ch;
  }
  out.push(cur);
  return out;
}

/**
 * Transfer syntaxes acceptable for a multipart/related retrieve of `partType` (application/dicom for
 * instances), most preferred first (by q, then header order). '*' stands for "as stored".
 * Throws AcceptError(406) when nothing in Accept allows that representation.
 */
export function acceptedTransferSyntaxes(header: string | undefined, partType = 'application/dicom'): string[] {
  const ranges = parseAccept(header);
  const found: { ts: string; q: number; order: number }[] = [];
  ranges.forEach((r, order) => {
    if (r.q === 0) return;
    let ts: string | undefined;
    if (r.type === '*/*' || r.type === 'multipart/*') {
      ts = ANY_TRANSFER_SYNTAX;
    } else if (r.type === 'multipart/related') {
      const type = (r.params.type ?? partType).toLowerCase();
      if (type !== partType && type !== '*/*') return;
      ts = r.params['transfer-syntax'] ?? (partType === 'application/dicom' ? EXPLICIT_VR_LE : ANY_TRANSFER_SYNTAX);
    } else {
      return;
    }
    if (ts !== ANY_TRANSFER_SYNTAX && !UID.test(ts)) throw new AcceptError(400, `transfer-syntax is not a UID: "${ts.slice(0, 80)}"`);
    found.push({ ts, q: r.q, order });
  });
  if (found.length === 0) {
    throw new AcceptError(406, `none of the accepted media types is multipart/related; type="${partType}"`);
  }
  found.sort((a, b) => b.q - a.q || a.order - b.order);
  return [...new Set(found.map((f) => f.ts))];
}

/** Whether the client accepts application/dicom+json (or json) for metadata and QIDO answers. */
export function acceptsDicomJson(header: string | undefined): boolean {
  const ranges = parseAccept(header);
  return ranges.some((r) => r.q > 0 && ['application/dicom+json', 'application/json', '*/*', 'application/*'].includes(r.type));
}

/** Media type of a single frame → the transfer syntaxes it can carry (PS3.18 Table 8.7.3-5). */
const FRAME_TYPES: Record<string, string[]> = {
  'application/octet-stream': [EXPLICIT_VR_LE],
  'image/jpeg': ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70'],
  'image/jls': ['1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81'],
  'image/jp2': ['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91'],
  'image/jpx': ['1.2.840.10008.1.2.4.92', '1.2.840.10008.1.2.4.93'],
  'image/dicom-rle': ['1.2.840.10008.1.2.5'],
  'image/jphc': ['1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202', '1.2.840.10008.1.2.4.203'],
};

/**
 * Transfer syntaxes acceptable for a WADO-RS frames retrieve, most preferred first; '*' = as stored.
 * A part type given without transfer-syntax allows every syntax of that media type.
 */
export function acceptedFrameSyntaxes(header: string | undefined): string[] {
  const ranges = parseAccept(header);
  const found: { ts: string; q: number; order: number }[] = [];
  ranges.forEach((r, order) => {
    if (r.q === 0) return;
    const push = (ts: string) => found.push({ ts, q: r.q, order });
    if (r.type === '*/*' || r.type === 'multipart/*') return push(ANY_TRANSFER_SYNTAX);
    const type = r.type === 'multipart/related' ? (r.params.type ?? 'application/octet-stream').toLowerCase() : r.type;
    const explicit = r.params['transfer-syntax'];
    if (explicit === ANY_TRANSFER_SYNTAX || type === '*/*' || type === 'image/*') return push(ANY_TRANSFER_SYNTAX);
    const candidates = FRAME_TYPES[type];
    if (!candidates) return;
    if (explicit) {
      if (!UID.test(explicit)) throw new AcceptError(400, `transfer-syntax is not a UID: "${explicit.slice(0, 80)}"`);
      if (candidates.includes(explicit) || type === 'application/octet-stream') push(explicit);
    } else {
      candidates.forEach(push);
    }
  });
  if (found.length === 0) throw new AcceptError(406, 'none of the accepted media types can carry a frame');
  found.sort((a, b) => b.q - a.q || a.order - b.order);
  return [...new Set(found.map((f) => f.ts))];
}

/**
 * Whether a one-frame retrieve should be answered single part (PS3.18 §8.6: a payload of exactly one
 * item may be single part): the client's most preferred range that can carry a frame is a single part
 * media type (application/octet-stream, image/jls…). multipart/related, or a wildcard, keeps multipart.
 */
export function prefersSinglePartFrame(header: string | undefined): boolean {
  const usable = parseAccept(header)
    .map((r, order) => ({ r, order }))
    .filter(({ r }) => r.q > 0 && (r.type === 'multipart/related' || r.type === '*/*' || r.type === 'multipart/*' || r.type === 'image/*' || r.type in FRAME_TYPES))
    .sort((a, b) => b.r.q - a.r.q || a.order - b.order);
  const best = usable[0]?.r.type;
  return best !== undefined && best !== 'multipart/related' && best !== 'multipart/*' && best !== '*/*';
}
