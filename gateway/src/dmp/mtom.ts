// MTOM/XOP (SOAP 1.2 over multipart/related): encode requests whose documents travel as binary
// attachments, decode answers (one root SOAP part + attachments by Content-ID).
import { randomUUID } from 'node:crypto';
import { NS } from './xds-constants.js';
import { attr, element, text, type Element } from './dom.js';

export interface MimePart {
  contentId: string;          // without angle brackets
  contentType: string;
  content: Buffer;
}

export class MtomError extends Error {}

/** Encode a SOAP envelope and its attachments as an MTOM message. */
export function encodeMtom(envelope: string, attachments: MimePart[], action?: string): { body: Buffer; contentType: string } {
  const boundary = `MIMEBoundary_${randomUUID().replace(/-/g, '')}`;
  const rootId = `root.message@drimbox`;
  const chunks: Buffer[] = [];
  const head = (h: string[]): Buffer => Buffer.from(h.join('\r\n') + '\r\n\r\n', 'utf8');
  chunks.push(Buffer.from(`--${boundary}\r\n`));
  chunks.push(
    head([
      `Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"${action ? `; action="${action}"` : ''}`,
      'Content-Transfer-Encoding: binary',
      `Content-ID: <${rootId}>`,
    ]),
  );
  chunks.push(Buffer.from(envelope, 'utf8'));
  for (const a of attachments) {
    chunks.push(Buffer.from(`\r\n--${boundary}\r\n`));
    chunks.push(head([`Content-Type: ${a.contentType}`, 'Content-Transfer-Encoding: binary', `Content-ID: <${a.contentId}>`]));
    chunks.push(a.content);
  }
  chunks.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  const contentType =
    `multipart/related; type="application/xop+xml"; boundary="${boundary}"; start="<${rootId}>"; start-info="application/soap+xml"` +
    (action ? `; action="${action}"` : '');
  return { body: Buffer.concat(chunks), contentType };
}

/** A parameter of a MIME header value (handles quoted values). */
export function headerParam(value: string, name: string): string | undefined {
  const re = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i');
  const m = re.exec(value);
  return m ? (m[1] ?? m[2]) : undefined;
}

function stripId(id: string): string {
  return id.trim().replace(/^</, '').replace(/>$/, '');
}

/** Split a multipart/related body into parts. */
export function decodeMultipart(body: Buffer, contentType: string): { root: MimePart; parts: Map<string, MimePart> } {
  const boundary = headerParam(contentType, 'boundary');
  if (!boundary) throw new MtomError('multipart/related without boundary');
  const start = headerParam(contentType, 'start');
  const delim = Buffer.from(`--${boundary}`);
  const parts: MimePart[] = [];
  let pos = body.indexOf(delim);
  if (pos < 0) throw new MtomError('multipart boundary not found');
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // closing delimiter
    // skip to the end of the delimiter line
    const eol = body.indexOf('\n', pos);
    if (eol < 0) throw new MtomError('truncated multipart body');
    const next = body.indexOf(delim, eol);
    if (next < 0) throw new MtomError('multipart body lacks its closing boundary');
    let partBuf = body.subarray(eol + 1, next);
    // the CRLF before the next delimiter belongs to the delimiter
    if (partBuf.length && partBuf[partBuf.length - 1] === 0x0a) partBuf = partBuf.subarray(0, partBuf.length - (partBuf[partBuf.length - 2] === 0x0d ? 2 : 1));
    let sep = partBuf.indexOf('\r\n\r\n');
    let sepLen = 4;
    const lf = partBuf.indexOf('\n\n');
    if (sep < 0 || (lf >= 0 && lf < sep)) {
      sep = lf;
      sepLen = 2;
    }
    if (sep < 0) throw new MtomError('multipart part without headers');
    const headers = new Map<string, string>();
    for (const line of partBuf.subarray(0, sep).toString('latin1').split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    let content = Buffer.from(partBuf.subarray(sep + sepLen));
    if ((headers.get('content-transfer-encoding') ?? '').toLowerCase() === 'base64') content = Buffer.from(content.toString('latin1'), 'base64');
    parts.push({ contentId: stripId(headers.get('content-id') ?? ''), contentType: headers.get('content-type') ?? 'application/octet-stream', content });
    pos = next;
  }
  if (!parts.length) throw new MtomError('empty multipart body');
  const root = (start && parts.find((p) => p.contentId === stripId(start))) || parts[0];
  return { root, parts: new Map(parts.filter((p) => p !== root).map((p) => [p.contentId, p])) };
}

/** A SOAP message as received: the envelope text and its attachments (empty for plain SOAP). */
export interface SoapMessage {
  envelope: string;
  attachments: Map<string, MimePart>;
}

export function decodeSoapMessage(body: Buffer, contentType: string): SoapMessage {
  const ct = contentType.toLowerCase();
  if (ct.startsWith('multipart/related')) {
    const { root, parts } = decodeMultipart(body, contentType);
    return { envelope: root.content.toString('utf8'), attachments: parts };
  }
  if (ct.startsWith('application/soap+xml') || ct.startsWith('text/xml') || ct.startsWith('application/xml')) {
    return { envelope: body.toString('utf8'), attachments: new Map() };
  }
  throw new MtomError(`unexpected content type ${contentType}`);
}

/** Content of an element that holds either an xop:Include or inline base64. */
export function xopContent(e: Element, attachments: Map<string, MimePart>): Buffer {
  const inc = element(e, 'Include');
  if (inc && inc.namespaceURI === NS.xop) {
    const href = attr(inc, 'href') ?? '';
    const cid = decodeURIComponent(href.replace(/^cid:/, ''));
    const part = attachments.get(cid);
    if (!part) throw new MtomError(`attachment ${href} is missing`);
    return part.content;
  }
  return Buffer.from(text(e), 'base64');
}
