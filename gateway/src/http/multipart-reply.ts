// A multipart/related answer streamed from parts as they come (peer API and the consumer's viewer
// API). It waits for the first part, so that a failure before any byte still gets a proper status;
// afterwards an error aborts the connection: a truncated answer never looks complete.
import type { FastifyReply } from 'fastify';
import { pipeline, Transform, type Readable } from 'node:stream';
import { NotFoundError } from '../pacs/pacs.js';
import { newBoundary, writeMultipart } from '../dicom/multipart.js';
import type { PartCheck } from '../dicom/part10-check.js';

export async function sendMultipart<P extends { body: Readable }>(
  reply: FastifyReply,
  parts: AsyncIterable<P>,
  opts: {
    /** the `type` parameter of the answer (e.g. application/dicom); none for frames */
    type?: string;
    headersOf: (part: P) => Record<string, string>;
    /** a check of each part's bytes: a part that fails it aborts the answer */
    checkOf?: (part: P) => PartCheck;
    /** bytes handed to the connection so far, for the audit (counted without another stream layer) */
    onBytes?: (total: number) => void;
  },
): Promise<FastifyReply> {
  const it = parts[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new NotFoundError('no instances for this request');
  async function* all(): AsyncGenerator<{ headers: Record<string, string>; body: Readable; check?: PartCheck }> {
    try {
      let r: IteratorResult<P> = first;
      while (!r.done) {
        yield { headers: opts.headersOf(r.value), body: r.value.body, check: opts.checkOf?.(r.value) };
        r = await it.next();
      }
    } finally {
      await it.return?.();
    }
  }
  const boundary = newBoundary();
  let total = 0;
  const onBytes = opts.onBytes;
  const batch = writeBatcher(reply);
  const body = writeMultipart(all(), boundary, { onBytes: (n) => { batch(); onBytes?.(total += n); } });
  const ct = opts.type ? `multipart/related; type="${opts.type}"; boundary=${boundary}` : `multipart/related; boundary=${boundary}`;
  // patient data: never kept by a browser or an intermediary
  return reply.header('content-type', ct).header('cache-control', 'private, no-store').send(body);
}

/**
 * Holds the connection's writes until the end of this event-loop turn, then hands them to the socket
 * in one writev (one TLS write): a part's headers, the end of one instance and the start of the next
 * otherwise each cost a syscall (and a TLS record). Nothing is copied or held longer than the turn;
 * backpressure is unchanged.
 */
function writeBatcher(reply: FastifyReply): () => void {
  const raw = reply.raw;
  let corked = false;
  const release = () => { corked = false; raw.uncork(); };
  return () => {
    if (corked) return;
    corked = true;
    raw.cork();
    setImmediate(release);
  };
}

/**
 * The first of `parts` as a single part answer (PS3.18 §8.6: a payload of exactly one item), its
 * bytes counted for the audit. An error in its stream aborts the answer.
 */
export async function sendSinglePart<P extends { body: Readable }>(
  reply: FastifyReply,
  parts: AsyncIterable<P>,
  opts: { typeOf: (part: P) => string; onBytes?: (total: number) => void },
): Promise<FastifyReply> {
  const it = parts[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new NotFoundError('nothing to send');
  let total = 0;
  const counted = new Transform({ transform(chunk: Buffer, _enc, done) { opts.onBytes?.(total += chunk.length); done(null, chunk); } });
  reply.raw.once('close', () => void it.return?.(undefined));
  return reply.header('content-type', opts.typeOf(first.value)).header('cache-control', 'private, no-store')
    .send(pipeline(first.value.body, counted, () => undefined));
}
