// Streaming multipart/related (RFC 2046 / PS3.18 8.6) writer and reader. Neither ever holds more than
// one chunk plus a boundary's worth of bytes: a study is never buffered. The reader is pull-driven,
// so backpressure from a part's consumer reaches the source stream.
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';

export interface MultipartPart {
  /** header names in lower case */
  headers: Record<string, string>;
  body: Readable | Buffer;
}

export interface ReadPart {
  headers: Record<string, string>;
  body: Readable;
}

export interface ContentType {
  /** lower-cased type/subtype, e.g. multipart/related */
  mediaType: string;
  /** parameter names lower-cased, values unquoted */
  params: Record<string, string>;
}

/** Thrown on malformed or truncated multipart input. */
export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

const CRLF = Buffer.from('\r\n');
const MAX_HEADER_BYTES = 64 * 1024;

export function newBoundary(): string {
  return `drimbox-${randomBytes(12).toString('hex')}`;
}

/** Parses `multipart/related; type="application/dicom"; boundary=...` (quoted or not). */
export function parseContentType(header: string): ContentType {
  const s = header ?? '';
  const semi = s.indexOf(';');
  const mediaType = (semi < 0 ? s : s.slice(0, semi)).trim().toLowerCase();
  const params: Record<string, string> = {};
  let i = semi < 0 ? s.length : semi + 1;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ';')) i++;
    const eq = s.indexOf('=', i);
    if (eq < 0) break;
    const name = s.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let value = '';
    if (s[i] === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i++];
      }
      i++; // closing quote
      while (i < s.length && s[i] !== ';') i++;
    } else {
      const end = s.indexOf(';', i);
      value = (end < 0 ? s.slice(i) : s.slice(i, end)).trim();
      i = end < 0 ? s.length : end;
    }
    if (name) params[name] = value;
  }
  return { mediaType, params };
}

/** Builds a multipart/related Content-Type value. */
export function multipartContentType(boundary: string, type: string, extra: Record<string, string> = {}): string {
  let v = `multipart/related; type="${type}"; boundary=${boundary}`;
  for (const [k, val] of Object.entries(extra)) v += `; ${k}=${val}`;
  return v;
}

/**
 * Serialises parts as they come. A Readable body is piped chunk by chunk (the output is only pulled as
 * fast as its consumer reads). An error from `parts` or a body destroys the output with that error.
 */
export function writeMultipart(parts: AsyncIterable<MultipartPart>, boundary: string): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    let first = true;
    for await (const part of parts) {
      let head = `${first ? '' : '\r\n'}--${boundary}\r\n`;
      for (const [k, v] of Object.entries(part.headers)) head += `${k}: ${v}\r\n`;
      yield Buffer.from(head + '\r\n', 'latin1');
      first = false;
      if (Buffer.isBuffer(part.body)) {
        if (part.body.length) yield part.body;
      } else {
        for await (const chunk of part.body) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      }
    }
    yield Buffer.from(`${first ? '' : '\r\n'}--${boundary}--\r\n`, 'latin1');
  }
  return Readable.from(generate(), { objectMode: false });
}

/**
 * Parses a multipart stream. Each part's body is a Readable that pulls from `stream` on demand; the
 * next part is produced once that body has ended. Asking for the next part before the body was read
 * discards the rest of it. Input that ends before the close delimiter throws MultipartError (from the
 * iterator and as the current body's error) instead of ending silently.
 */
export async function* readMultipart(stream: Readable, boundary: string): AsyncGenerator<ReadPart> {
  if (!boundary || boundary.length > 200) throw new MultipartError('invalid multipart boundary');
  const reader = new ChunkReader(stream);
  // "\r\n" prefix lets the first delimiter (at the very start) match the same pattern as the others
  reader.buf = CRLF;
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  try {
    // preamble: skip to the first delimiter
    for (;;) {
      const at = reader.buf.indexOf(delimiter);
      if (at >= 0) { reader.buf = reader.buf.subarray(at + delimiter.length); break; }
      if (reader.buf.length > delimiter.length) reader.buf = reader.buf.subarray(reader.buf.length - delimiter.length);
      if (!(await reader.fill())) throw new MultipartError('multipart body has no boundary');
    }
    for (;;) {
      // after a delimiter: "--" closes, else optional padding then CRLF
      while (reader.buf.length < 2) if (!(await reader.fill())) throw new MultipartError('multipart truncated after boundary');
      if (reader.buf[0] === 0x2d && reader.buf[1] === 0x2d) return; // close delimiter; epilogue ignored
      let eol: number;
      while ((eol = reader.buf.indexOf(CRLF)) < 0) {
        if (reader.buf.length > 1024) throw new MultipartError('malformed multipart boundary line');
        if (!(await reader.fill())) throw new MultipartError('multipart truncated in boundary line');
      }
      if (reader.buf.subarray(0, eol).toString('latin1').trim() !== '') throw new MultipartError('malformed multipart boundary line');
      reader.buf = reader.buf.subarray(eol + 2);
      const headers = await readHeaders(reader);
      const body = new PartBody(reader, delimiter);
      yield { headers, body };
      await body.finished();
    }
  } finally {
    reader.close();
  }
}

async function readHeaders(reader: ChunkReader): Promise<Record<string, string>> {
  const headers: Record<string, string> = {};
  // empty header block: the blank line comes at once
  while (reader.buf.length < 2) if (!(await reader.fill())) throw new MultipartError('multipart truncated in part headers');
  if (reader.buf[0] === 0x0d && reader.buf[1] === 0x0a) {
    reader.buf = reader.buf.subarray(2);
    return headers;
  }
  const end = Buffer.from('\r\n\r\n');
  let at: number;
  while ((at = reader.buf.indexOf(end)) < 0) {
    if (reader.buf.length > MAX_HEADER_BYTES) throw new MultipartError('multipart part headers too large');
    if (!(await reader.fill())) throw new MultipartError('multipart truncated in part headers');
  }
  const block = reader.buf.subarray(0, at).toString('latin1');
  reader.buf = reader.buf.subarray(at + 4);
  let last: string | undefined;
  for (const line of block.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) { headers[last] += ' ' + line.trim(); continue; }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError('malformed multipart part header');
    last = line.slice(0, colon).trim().toLowerCase();
    headers[last] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Pulls chunks from a Readable one at a time into `buf`. */
class ChunkReader {
  buf: Buffer = Buffer.alloc(0);
  private it: AsyncIterator<unknown>;
  private done = false;
  constructor(stream: Readable) {
    this.it = stream[Symbol.asyncIterator]();
  }
  /** appends the next chunk; false at end of input */
  async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) { this.done = true; return false; }
    const c = r.value as Buffer | string;
    const chunk = typeof c === 'string' ? Buffer.from(c) : c;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }
  close(): void {
    if (!this.done) { this.done = true; void this.it.return?.().catch(() => undefined); }
  }
}

/** One part's body: emits bytes up to the next delimiter, holding back a possible partial delimiter. */
class PartBody extends Readable {
  private pumping = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private ended = false;
  private failure: Error | undefined;
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(private reader: ChunkReader, private delimiter: Buffer) {
    super();
  }

  override _read(): void {
    if (this.pumping || this.ended) return;
    this.pumping = true;
    this.pumpDone = this.pump().then(() => { this.pumping = false; }, (err: Error) => {
      this.pumping = false;
      this.fail(err);
    });
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // a destroyed body is skipped (drained) so the next part can still be read, unless input failed
    if (!this.ended && !this.failure) {
      // wait for an in-flight pull so the two never read the source at the same time
      this.pumpDone.then(() => (this.ended || this.failure ? undefined : this.drain()))
        .then(() => this.settle(), (e: Error) => this.settleError(e));
    }
    cb(err);
  }

  private async pump(): Promise<void> {
    const r = this.reader;
    for (;;) {
      const at = r.buf.indexOf(this.delimiter);
      if (at >= 0) {
        const data = r.buf.subarray(0, at);
        r.buf = r.buf.subarray(at + this.delimiter.length);
        this.ended = true;
        if (data.length) this.push(data);
        this.push(null);
        this.settle();
        return;
      }
      const safe = r.buf.length - (this.delimiter.length - 1);
      if (safe > 0) {
        const data = r.buf.subarray(0, safe);
        r.buf = r.buf.subarray(safe);
        if (!this.push(data)) return;
        continue;
      }
      if (!(await r.fill())) throw new MultipartError('multipart truncated inside a part');
      if (this.destroyed) return;
    }
  }

  /** skip the rest of this body without emitting it */
  private async drain(): Promise<void> {
    const r = this.reader;
    for (;;) {
      const at = r.buf.indexOf(this.delimiter);
      if (at >= 0) { r.buf = r.buf.subarray(at + this.delimiter.length); this.ended = true; return; }
      if (r.buf.length >= this.delimiter.length) r.buf = r.buf.subarray(r.buf.length - (this.delimiter.length - 1));
      if (!(await r.fill())) throw new MultipartError('multipart truncated inside a part');
    }
  }

  private fail(err: Error): void {
    this.failure = err;
    this.destroy(err);
    this.settleError(err);
  }

  private settle(): void {
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  private settleError(e: Error): void {
    this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  /** resolves once the reader stands after this part's delimiter; drains an unread body */
  finished(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.destroyed && !this.pumping && this.listenerCount('data') === 0 && !this.readableFlowing) {
        // nobody is reading it: discard the rest
        this.destroy();
      }
    });
  }
}
