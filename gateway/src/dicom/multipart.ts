// Streaming multipart/related (RFC 2046 / PS3.18 8.6) writer and reader. Neither ever holds more than
// one chunk plus a boundary's worth of bytes: a study is never buffered. The reader is pull-driven,
// so backpressure from a part's consumer reaches the source stream.
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { PartCheck } from './part10-check.js';

export interface MultipartPart {
  /** header names in lower case */
  headers: Record<string, string>;
  body: Readable | Buffer;
  /** sees every byte of the body, then its end; a throw fails the whole output (no close delimiter) */
  check?: PartCheck;
}

export interface ReadPart {
  headers: Record<string, string>;
  body: Readable;
  /**
   * The body's first bytes already in memory when the part is yielded (a view, nothing copied or
   * consumed: `body` still emits them), e.g. to read a Part 10 meta header without a stream round trip.
   */
  head: Buffer;
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

export interface WriteMultipartOptions {
  /** called with the size of every chunk handed to the consumer (byte accounting without a 2nd stream) */
  onBytes?: (n: number) => void;
}

/**
 * Serialises parts as they come. A Readable body is passed through chunk by chunk without copying (the
 * output is only pulled as fast as its consumer reads: a full output pauses the body). An error from
 * `parts` or a body destroys the output with that error; destroying the output destroys the current
 * body and closes `parts`.
 */
export function writeMultipart(parts: AsyncIterable<MultipartPart>, boundary: string, opts: WriteMultipartOptions = {}): Readable {
  return new MultipartWriter(parts[Symbol.asyncIterator](), boundary, opts.onBytes);
}

/** Output buffer of the writer: large enough that a slow consumer does not stall the PACS at once. */
const WRITER_HIGH_WATER = 1 << 20;
class MultipartWriter extends Readable {
  private first = true;
  private fetching = false;
  private finishedParts = false;
  private body: Readable | undefined;
  private detach: (() => void) | undefined;
  constructor(private it: AsyncIterator<MultipartPart>, private boundary: string, private onBytes?: (n: number) => void) {
    super({ highWaterMark: WRITER_HIGH_WATER });
  }

  /**
   * push with accounting; false when the consumer is full. Chunks are handed on as they come: batching
   * them into 256 KiB copies was measured to double the box's CPU per byte (copies, and GC driven by
   * the extra external memory), so there is deliberately no coalescing here.
   */
  private out(chunk: Buffer): boolean {
    this.onBytes?.(chunk.length);
    return this.push(chunk);
  }

  override _read(): void {
    if (this.body) { this.body.resume(); return; }
    if (!this.fetching && !this.finishedParts) this.nextPart();
  }

  private nextPart(): void {
    this.fetching = true;
    this.it.next().then((r) => {
      this.fetching = false;
      if (this.destroyed) return;
      if (r.done) {
        this.finishedParts = true;
        this.out(Buffer.from(`${this.first ? '' : '\r\n'}--${this.boundary}--\r\n`, 'latin1'));
        this.push(null);
        return;
      }
      this.startPart(r.value);
    }, (err: Error) => {
      this.fetching = false;
      this.destroy(err);
    });
  }

  private startPart(part: MultipartPart): void {
    let head = `${this.first ? '' : '\r\n'}--${this.boundary}\r\n`;
    for (const [k, v] of Object.entries(part.headers)) head += `${k}: ${v}\r\n`;
    this.first = false;
    const headBytes = Buffer.from(head + '\r\n', 'latin1');
    const check = part.check;
    if (Buffer.isBuffer(part.body)) {
      let more = this.out(headBytes);
      try {
        check?.data(part.body);
        check?.end();
      } catch (e) {
        this.destroy(e as Error);
        return;
      }
      if (part.body.length) more = this.out(part.body);
      if (more) this.nextPart();
      return;
    }
    const body = part.body;
    this.body = body;
    // the part's headers go out with its first bytes, in the same tick: one write to the connection
    // (and one TLS record) instead of a separate small one per part
    let pendingHead: Buffer | undefined = headBytes;
    const onData = (c: Buffer | string) => {
      const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c);
      if (check) {
        try { check.data(chunk); } catch (e) { onError(e as Error); return; }
      }
      if (pendingHead) { this.out(pendingHead); pendingHead = undefined; }
      if (!this.out(chunk)) body.pause();
    };
    const onEnd = () => {
      if (check) {
        try { check.end(); } catch (e) { onError(e as Error); return; }
      }
      if (pendingHead) { this.out(pendingHead); pendingHead = undefined; }
      done();
      // the consumer asked for more when the last push was accepted; otherwise _read continues
      if (this.readableLength < this.readableHighWaterMark) this.nextPart();
    };
    const onError = (err: Error) => { done(); this.destroy(err); };
    const onClose = () => { if (!body.readableEnded) onError(new Error('part body closed before its end')); };
    const done = () => {
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      this.body = undefined;
      this.detach = undefined;
    };
    this.detach = done;
    body.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    if (body.isPaused()) body.resume();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const body = this.body;
    this.detach?.();
    if (body && !body.destroyed) body.destroy();
    // closes the source of parts (its finally blocks release the PACS answer)
    void Promise.resolve(this.it.return?.(undefined)).catch(() => undefined);
    cb(err);
  }
}

export interface ReadMultipartOptions {
  /** maps an input failure before it reaches a part body's consumer (e.g. to a domain error) */
  bodyError?: (err: Error) => Error;
}

/**
 * Parses a multipart stream. Each part's body is a Readable that pulls from `stream` on demand; the
 * next part is produced once that body has ended. Asking for the next part before the body was read
 * discards the rest of it. Input that ends before the close delimiter throws MultipartError (from the
 * iterator and as the current body's error) instead of ending silently. Body chunks are slices of the
 * input chunks: nothing is copied except around a delimiter split across two input chunks.
 */
export async function* readMultipart(stream: Readable, boundary: string, opts: ReadMultipartOptions = {}): AsyncGenerator<ReadPart> {
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
      const body = new PartBody(reader, delimiter, opts.bodyError);
      yield { headers, body, head: bodyHead(reader.buf, delimiter) };
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

/**
 * Takes chunks from a Readable in flowing mode, so the hot path gets a chunk handed over instead of
 * awaiting an async iterator (which also concatenates whatever the source buffered). A chunk that
 * arrives while the parser is not waiting goes back into the source, which is paused: backpressure.
 */
class ChunkReader {
  /** bytes not yet consumed by the parser */
  buf: Buffer = Buffer.alloc(0);
  private queue: Buffer[] = [];
  private ended = false;
  private failure: Error | undefined;
  private waiters: (() => void)[] = [];
  private readonly onData = (c: Buffer | string) => {
    const chunk = typeof c === 'string' ? Buffer.from(c) : c;
    if (!chunk.length) return;
    if (this.waiters.length) {
      this.queue.push(chunk);
      this.wake();
    } else {
      this.stream.pause();
      this.stream.unshift(chunk);
    }
  };
  private readonly onEnd = () => { this.ended = true; this.wake(); };
  private readonly onError = (e: Error) => { this.failure ??= e; this.wake(); };
  private readonly onClose = () => {
    if (!this.ended) this.failure ??= Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    this.wake();
  };

  constructor(private stream: Readable) {
    stream.on('data', this.onData).on('end', this.onEnd).on('error', this.onError).on('close', this.onClose);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** the next input chunk: a Buffer, null at the end of input, undefined when one must be awaited (wait()) */
  take(): Buffer | null | undefined {
    const c = this.queue.shift();
    if (c) return c;
    if (this.failure) throw this.failure;
    if (this.ended) return null;
    if (this.stream.isPaused()) this.stream.resume();
    return undefined;
  }

  /** resolves when take() has something new to say */
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** appends the next chunk to `buf`; false at end of input */
  async fill(): Promise<boolean> {
    let c = this.take();
    while (c === undefined) {
      await this.wait();
      c = this.take();
    }
    if (c === null) return false;
    this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
    return true;
  }

  close(): void {
    this.stream.off('data', this.onData).off('end', this.onEnd).off('close', this.onClose);
    this.queue = [];
    if (!this.ended) {
      this.ended = true;
      this.stream.destroy();
    }
    this.wake();
    // onError stays attached: a late error of the abandoned input must not crash the process
  }
}

/**
 * Where the bytes that may begin a delimiter start at the end of `buf` (a proper prefix of the
 * delimiter as a suffix of `buf`), or buf.length when none does: only those need holding back.
 */
function heldBackFrom(buf: Buffer, delimiter: Buffer): number {
  const n = buf.length;
  let i = buf.indexOf(0x0d, Math.max(0, n - delimiter.length + 1));
  while (i >= 0) {
    if (delimiter.compare(buf, i, n, 0, n - i) === 0) return i;
    i = buf.indexOf(0x0d, i + 1);
  }
  return n;
}

/** What of `buf` surely belongs to the body that starts it: up to a delimiter or a possible one (16 KiB at most: a meta header is far shorter). */
function bodyHead(buf: Buffer, delimiter: Buffer): Buffer {
  const scan = buf.length > HEAD_SCAN ? buf.subarray(0, HEAD_SCAN) : buf;
  const at = scan.indexOf(delimiter);
  return at >= 0 ? scan.subarray(0, at) : scan.subarray(0, heldBackFrom(scan, delimiter));
}
const HEAD_SCAN = 16 * 1024;

/** One part's body: emits bytes up to the next delimiter, holding back a possible partial delimiter. */
class PartBody extends Readable {
  private pumping = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private ended = false;
  private failure: Error | undefined;
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(private reader: ChunkReader, private delimiter: Buffer, private mapError?: (e: Error) => Error) {
    super();
  }

  override _read(): void {
    if (this.pumping || this.ended || this.failure) return;
    this.pump();
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

  /** Emits what is available synchronously; awaits the reader only when its queue is empty. */
  private pump(): void {
    const r = this.reader;
    try {
      for (;;) {
        const buf = r.buf;
        if (buf.length) {
          const at = buf.indexOf(this.delimiter);
          if (at >= 0) {
            r.buf = buf.subarray(at + this.delimiter.length);
            this.ended = true;
            if (at) this.push(buf.subarray(0, at));
            this.push(null);
            this.settle();
            return;
          }
          const hold = heldBackFrom(buf, this.delimiter);
          if (hold > 0) {
            r.buf = buf.subarray(hold);
            if (!this.push(hold === buf.length ? buf : buf.subarray(0, hold))) return;
            continue;
          }
        }
        const c = r.take();
        if (c === undefined) {
          this.pumping = true;
          this.pumpDone = r.wait().then(() => {
            this.pumping = false;
            if (!this.destroyed) this.pump();
          });
          return;
        }
        if (c === null) throw new MultipartError('multipart truncated inside a part');
        // only a held-back delimiter prefix is ever joined with the next chunk
        r.buf = buf.length ? Buffer.concat([buf, c]) : c;
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** skip the rest of this body without emitting it */
  private async drain(): Promise<void> {
    const r = this.reader;
    for (;;) {
      const at = r.buf.indexOf(this.delimiter);
      if (at >= 0) { r.buf = r.buf.subarray(at + this.delimiter.length); this.ended = true; return; }
      r.buf = r.buf.subarray(heldBackFrom(r.buf, this.delimiter));
      if (!(await r.fill())) throw new MultipartError('multipart truncated inside a part');
    }
  }

  private fail(err: Error): void {
    this.failure = err;
    this.destroy(this.mapError ? this.mapError(err) : err);
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
