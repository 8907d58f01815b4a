// PACS adapter speaking DICOMweb (QIDO-RS, WADO-RS, STOW-RS) with undici, and WADO-RS retrieval with
// Node's http client (see multipartGet). Retrieval streams the PACS's multipart answer part by part;
// nothing is buffered beyond one chunk.
// Orthanc 1.10 quirks handled here: WADO-RS asks `transfer-syntax=*` (else Orthanc transcodes
// everything to Explicit VR LE), and QIDO values are sent nearly raw (Orthanc does not percent-decode).
import { Agent, request, type Dispatcher } from 'undici';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import {
  NotAcceptableError, NotFoundError, PacsTimeoutError, PacsUnavailableError,
  type DicomJson, type DicomRef, type FramePart, type InstancePart, type Pacs, type QueryKeys,
  type QueryOptions, type RetrieveOptions, type StoreResult,
} from './pacs.js';
import { readMultipart, writeMultipart, parseContentType, newBoundary, multipartContentType, MultipartError } from '../dicom/multipart.js';
import { peekMeta, readMeta, FrameRangeError, Part10Error } from '../dicom/part10.js';
import { ANY_TRANSFER_SYNTAX, frameMediaType, storedIsAcceptable } from '../dicom/transfer-syntax.js';

export interface DicomwebPacsConfig {
  kind: 'dicomweb';
  /** DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web */
  url: string;
  headers?: Record<string, string>;
  /** connect / first-byte / idle-body timeout (default 30 s) */
  timeoutMs?: number;
}


/**
 * Orthanc 1.10 does not percent-decode QIDO values, so nothing may be percent-encoded: the characters
 * that cannot travel raw in a query (space & # + %, controls, non-ASCII) become the DICOM single-character
 * wildcard '?' — the match is then at worst slightly wider, never empty. `^`, `*`, `-`, `\` stay raw.
 */
export function qidoValue(v: string): string {
  return v.replace(/[^\x21-\x7e]|[%&#+]/gu, '?');
}

export function qidoQuery(keys: QueryKeys, opts: QueryOptions = {}): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(keys)) {
    if (v === undefined || v === null) continue;
    parts.push(`${encodeURIComponent(k)}=${qidoValue(String(v))}`);
  }
  for (const f of opts.includeField ?? []) parts.push(`includefield=${encodeURIComponent(f)}`);
  if (opts.limit !== undefined) parts.push(`limit=${Math.max(0, Math.floor(opts.limit))}`);
  if (opts.offset !== undefined) parts.push(`offset=${Math.max(0, Math.floor(opts.offset))}`);
  if (opts.fuzzy) parts.push('fuzzymatching=true');
  return parts.length ? `?${parts.join('&')}` : '';
}

const UID = /^[0-9.]{1,64}$/;

function refPath(ref: DicomRef): string {
  for (const u of [ref.study, ref.series, ref.instance]) if (u !== undefined && !UID.test(u)) throw new NotFoundError('invalid UID');
  let p = `/studies/${ref.study}`;
  if (ref.series) p += `/series/${ref.series}`;
  if (ref.instance) {
    if (!ref.series) throw new NotFoundError('an instance reference needs its series');
    p += `/instances/${ref.instance}`;
  }
  return p;
}

function isAbort(e: unknown, signal?: AbortSignal): boolean {
  return !!signal?.aborted || (e as Error)?.name === 'AbortError';
}

/** Anything that is not one of our domain errors (or a caller abort) means the PACS failed us. */
function asPacsError(e: unknown, what: string, signal?: AbortSignal): unknown {
  if (e instanceof NotFoundError || e instanceof NotAcceptableError || e instanceof PacsUnavailableError || e instanceof FrameRangeError) return e;
  if (isAbort(e, signal)) return e;
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && /^UND_ERR_(CONNECT|HEADERS|BODY)_TIMEOUT$/.test(code)) return new PacsTimeoutError(`PACS ${what}: no answer in time`, { cause: e });
  const reason = e instanceof MultipartError ? 'answer cut mid-stream' : e instanceof Part10Error ? 'malformed instance' : ((e as Error)?.message ?? String(e));
  return new PacsUnavailableError(`PACS ${what}: ${reason}`, { cause: e });
}

/** Re-emits a stream's bytes, turning its failures into PacsUnavailableError. */
function guarded(src: Readable, signal?: AbortSignal): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    try {
      for await (const c of src) yield c as Buffer;
    } catch (e) {
      throw asPacsError(e, 'retrieve', signal);
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

export class DicomwebPacs implements Pacs {
  readonly kind = 'dicomweb' as const;
  private readonly agent: Agent;
  private readonly streamAgent: http.Agent;
  private readonly base: string;
  private readonly timeoutMs: number;

  constructor(private readonly config: DicomwebPacsConfig) {
    const t = this.timeoutMs = config.timeoutMs ?? 30_000;
    this.agent = new Agent({ connect: { timeout: t }, headersTimeout: t, bodyTimeout: t, keepAliveTimeout: 4_000 });
    this.base = config.url.replace(/\/+$/, '');
    this.streamAgent = this.base.startsWith('https:') ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }

  /**
   * A GET whose answer is streamed on, over Node's http client. Orthanc ends a WADO-RS answer by
   * closing the connection (no length, not chunked); undici fails such a request when the connection
   * closes while backpressure has paused its parser, and the answer's last bytes are lost (seen as
   * "closed" a few hundred KB before the end of a study, about one retrieve in ten here).
   */
  private multipartGet(path: string, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    const url = new URL(this.base + path);
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(url, {
        method: 'GET', agent: this.streamAgent, signal, timeout: this.timeoutMs,
        headers: { ...this.config.headers, ...headers },
      }, resolve);
      // connect, first byte and every idle gap of the body
      req.on('timeout', () => req.destroy(new PacsTimeoutError(`PACS gave no answer for ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  private async call(method: 'GET' | 'POST', path: string, headers: Record<string, string>, signal?: AbortSignal, body?: Readable): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.base + path, {
        method, dispatcher: this.agent, signal, body,
        headers: { ...this.config.headers, ...headers },
      });
    } catch (e) {
      throw asPacsError(e, 'unreachable', signal);
    }
    if (res.statusCode >= 500) {
      const text = await res.body.text().catch(() => '');
      throw new PacsUnavailableError(`PACS answered ${res.statusCode} to ${method} ${path.split('?')[0]}${text ? `: ${text.slice(0, 200)}` : ''}`);
    }
    return res;
  }

  private async json(path: string, signal?: AbortSignal): Promise<DicomJson[]> {
    const res = await this.call('GET', path, { accept: 'application/dicom+json' }, signal);
    if (res.statusCode === 204) { await res.body.dump(); return []; }
    if (res.statusCode === 404) { await res.body.dump(); throw new NotFoundError(`not found: ${path.split('?')[0]}`); }
    if (res.statusCode >= 400) {
      const text = await res.body.text().catch(() => '');
      // the PACS refused what the box asked: the PACS side failed the request (502), not the caller
      throw new PacsUnavailableError(`PACS refused ${path.split('?')[0]}: ${res.statusCode} ${text.slice(0, 200)}`);
    }
    try {
      const text = await res.body.text();
      return text.trim() ? (JSON.parse(text) as DicomJson[]) : [];
    } catch (e) {
      throw asPacsError(e, 'answer', signal);
    }
  }

  async echo(signal?: AbortSignal): Promise<void> {
    await this.json('/studies?limit=1', signal);
  }

  async findStudies(keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    return this.json(`/studies${qidoQuery(keys, opts)}`, opts.signal);
  }

  async findSeries(study: string | undefined, keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    const prefix = study ? refPath({ study }) : '';
    return this.json(`${prefix}/series${qidoQuery(keys, opts)}`, opts.signal).catch((e) => notFoundAsEmpty(e, !!study));
  }

  async findInstances(study: string | undefined, series: string | undefined, keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    let prefix = '';
    if (study && series) prefix = refPath({ study, series });
    else if (study) prefix = refPath({ study });
    else if (series) keys = { ...keys, SeriesInstanceUID: series };
    return this.json(`${prefix}/instances${qidoQuery(keys, opts)}`, opts.signal).catch((e) => notFoundAsEmpty(e, !!study));
  }

  /** Opens a WADO-RS multipart retrieve; the caller owns the body. */
  private async openMultipart(path: string, accept: string, signal?: AbortSignal, tryingSyntax = false): Promise<{ body: Readable; boundary: string } | 'not-acceptable'> {
    let res: IncomingMessage;
    try {
      res = await this.multipartGet(path, { accept }, signal);
    } catch (e) {
      throw asPacsError(e, 'unreachable', signal);
    }
    const status = res.statusCode ?? 0;
    if (status >= 500) {
      const text = await textOf(res);
      // Orthanc answers 500 to a transfer syntax it cannot produce
      if (tryingSyntax) return 'not-acceptable';
      throw new PacsUnavailableError(`PACS answered ${status} to GET ${path.split('?')[0]}${text ? `: ${text.slice(0, 200)}` : ''}`);
    }
    if (status === 404) { res.resume(); throw new NotFoundError(`not found: ${path}`); }
    if (status === 406 || status === 400 || status === 415) { res.resume(); return 'not-acceptable'; }
    if (status >= 300) { res.resume(); throw new PacsUnavailableError(`PACS answered ${status} to GET ${path}`); }
    const ct = parseContentType(String(res.headers['content-type'] ?? ''));
    if (!ct.mediaType.startsWith('multipart/') || !ct.params.boundary) {
      res.resume();
      throw new PacsUnavailableError(`PACS answered ${ct.mediaType || 'no content type'} instead of multipart`);
    }
    return { body: res, boundary: ct.params.boundary };
  }

  async *retrieve(ref: DicomRef, opts: RetrieveOptions): AsyncGenerator<InstancePart> {
    const accepted = opts.transferSyntaxes.length ? opts.transferSyntaxes : [ANY_TRANSFER_SYNTAX];
    const path = refPath(ref);
    const opened = await this.openMultipart(path, dicomAccept(ANY_TRANSFER_SYNTAX), opts.signal);
    if (opened === 'not-acceptable') throw new PacsUnavailableError('PACS refused to send instances as stored');
    let any = false;
    try {
      // body failures reach the consumer as PacsUnavailableError (an abort stays an abort)
      const bodyError = (e: Error) => asPacsError(e, 'retrieve', opts.signal) as Error;
      for await (const part of readMultipart(opened.body, opened.boundary, { bodyError })) {
        any = true;
        const body = part.body;
        // the meta header is nearly always in the bytes already read: no stream round trip then
        const meta = readMeta(part.head) ?? (await peekMeta(body)).meta;
        if (storedIsAcceptable(meta.transferSyntaxUid, accepted)) {
          const len = Number(part.headers['content-length']);
          yield { transferSyntaxUid: meta.transferSyntaxUid, sopInstanceUid: meta.sopInstanceUid, length: Number.isFinite(len) && len > 0 ? len : undefined, body };
        } else {
          body.destroy(); // skipped; the multipart reader drains it
          yield await this.transcoded(ref, meta.sopInstanceUid, accepted, opts.signal);
        }
      }
    } catch (e) {
      throw asPacsError(e, 'retrieve', opts.signal);
    } finally {
      opened.body.destroy();
    }
    if (!any) throw new NotFoundError('no instances');
  }

  /** Re-fetches one instance asking the PACS to transcode to the first accepted syntax it can produce. */
  private async transcoded(ref: DicomRef, sop: string, accepted: string[], signal?: AbortSignal): Promise<InstancePart> {
    let series = ref.series;
    if (!series || ref.instance !== sop) {
      const found = await this.json(`${refPath({ study: ref.study })}/instances?SOPInstanceUID=${qidoValue(sop)}`, signal);
      series = found[0]?.['0020000E']?.Value?.[0] as string | undefined;
      if (!series) throw new PacsUnavailableError('PACS lost an instance while retrieving it');
    }
    const path = refPath({ study: ref.study, series, instance: sop });
    for (const ts of accepted) {
      const opened = await this.openMultipart(path, dicomAccept(ts), signal, true);
      if (opened === 'not-acceptable') continue;
      const it = readMultipart(opened.body, opened.boundary);
      try {
        const first = await it.next();
        if (first.done) throw new PacsUnavailableError('PACS sent an empty answer');
        const { meta, body } = await peekMeta(first.value.body);
        if (meta.transferSyntaxUid !== ts) { body.destroy(); await it.return(undefined); continue; }
        // keep the generator alive until the body is read: it holds the HTTP answer
        const out = guarded(body, signal);
        out.once('close', () => { void it.return(undefined); });
        return { transferSyntaxUid: ts, sopInstanceUid: meta.sopInstanceUid, body: out };
      } catch (e) {
        opened.body.destroy();
        throw asPacsError(e, 'retrieve', signal);
      }
    }
    throw new NotAcceptableError(`instance cannot be delivered in any of: ${accepted.join(', ')}`);
  }

  async *retrieveFrames(ref: Required<DicomRef>, frames: number[], opts: RetrieveOptions): AsyncGenerator<FramePart> {
    if (!frames.length || frames.some((f) => !Number.isInteger(f) || f < 1)) throw new RangeError('frame numbers are 1-based integers');
    const path = `${refPath(ref)}/frames/${frames.join(',')}`;
    const accepted = opts.transferSyntaxes.length ? opts.transferSyntaxes : [ANY_TRANSFER_SYNTAX];
    for (const ts of accepted) {
      const accept = ts === ANY_TRANSFER_SYNTAX
        ? 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
        : `multipart/related; type="${frameMediaType(ts)}"; transfer-syntax=${ts}`;
      const opened = await this.openMultipart(path, accept, opts.signal, ts !== ANY_TRANSFER_SYNTAX);
      if (opened === 'not-acceptable') continue;
      try {
        let n = 0;
        for await (const part of readMultipart(opened.body, opened.boundary)) {
          const ct = parseContentType(part.headers['content-type'] ?? 'application/octet-stream');
          const got = ct.params['transfer-syntax'] ?? (ts === ANY_TRANSFER_SYNTAX ? '' : ts);
          if (ts !== ANY_TRANSFER_SYNTAX && got && got !== ts) break; // PACS ignored our choice: try the next
          n++;
          yield { contentType: ct.mediaType || 'application/octet-stream', transferSyntaxUid: got, body: guarded(part.body, opts.signal) };
        }
        if (n) return;
      } catch (e) {
        throw asPacsError(e, 'retrieve', opts.signal);
      } finally {
        opened.body.destroy();
      }
    }
    // Orthanc answers 400 alike to a frame it does not have and to a syntax it cannot produce: tell them apart
    await this.checkFrameNumbers(ref, frames, opts.signal);
    throw new NotAcceptableError(`frames cannot be delivered in any of: ${accepted.join(', ')}`);
  }

  /** Throws FrameRangeError (or NotFoundError) when `frames` are not all frames of the instance. */
  private async checkFrameNumbers(ref: Required<DicomRef>, frames: number[], signal?: AbortSignal): Promise<void> {
    const found = await this.findInstances(ref.study, ref.series, { SOPInstanceUID: ref.instance }, { includeField: ['00280008'], signal });
    if (!found.length) throw new NotFoundError('no such instance');
    const count = Number(found[0]['00280008']?.Value?.[0] ?? 1) || 1;
    const beyond = frames.find((f) => f > count);
    if (beyond !== undefined) throw new FrameRangeError(beyond, count);
  }

  async metadata(ref: DicomRef, signal?: AbortSignal): Promise<DicomJson[]> {
    const list = await this.json(`${refPath(ref)}/metadata`, signal);
    if (!list.length) throw new NotFoundError('no instances');
    for (const ds of list) relativiseBulkData(ds);
    return list;
  }

  async store(instances: AsyncIterable<Buffer | Readable>, signal?: AbortSignal): Promise<StoreResult> {
    const boundary = newBoundary();
    async function* parts() {
      for await (const body of instances) yield { headers: { 'content-type': 'application/dicom' }, body };
    }
    const res = await this.call('POST', '/studies', { 'content-type': multipartContentType(boundary, 'application/dicom') }, signal, writeMultipart(parts(), boundary));
    const text = await res.body.text().catch(() => '');
    if (res.statusCode >= 400 && res.statusCode !== 409) throw new Error(`STOW-RS refused: ${res.statusCode} ${text.slice(0, 200)}`);
    const result: StoreResult = { stored: [], failed: [] };
    let answer: DicomJson = {};
    try { answer = text.trim() ? (JSON.parse(text) as DicomJson) : {}; } catch { /* no body */ }
    if (Array.isArray(answer)) answer = answer[0] ?? {};
    for (const item of (answer['00081199']?.Value ?? []) as DicomJson[]) {
      result.stored.push({ sopClassUid: String(item['00081150']?.Value?.[0] ?? ''), sopInstanceUid: String(item['00081155']?.Value?.[0] ?? '') });
    }
    for (const item of (answer['00081198']?.Value ?? []) as DicomJson[]) {
      result.failed.push({ sopInstanceUid: item['00081155']?.Value?.[0] as string | undefined, reason: `failure reason ${item['00081197']?.Value?.[0] ?? 'unknown'}` });
    }
    return result;
  }

  async close(): Promise<void> {
    this.streamAgent.destroy();
    await this.agent.close();
  }
}

async function textOf(res: Readable): Promise<string> {
  try {
    return Buffer.concat(await res.toArray()).toString('utf8');
  } catch {
    return '';
  }
}

function notFoundAsEmpty(e: unknown, scoped: boolean): DicomJson[] {
  if (scoped && e instanceof NotFoundError) return [];
  throw e;
}

function dicomAccept(ts: string): string {
  return `multipart/related; type="application/dicom"; transfer-syntax=${ts}`;
}

/** Orthanc answers absolute BulkDataURIs pointing at itself; keep the part relative to the instance. */
export function relativiseBulkData(ds: DicomJson): void {
  for (const el of Object.values(ds)) {
    if (el.BulkDataURI) {
      const m = /\/instances\/[0-9.]+\/(.+)$/.exec(el.BulkDataURI);
      if (m) el.BulkDataURI = m[1];
    }
    if (el.vr === 'SQ') for (const item of (el.Value ?? []) as DicomJson[]) relativiseBulkData(item);
  }
}
