// The DICOMweb API other boxes call (WADO-RS, metadata, frames, QIDO-RS), served on the mutual-TLS
// peer listener. Bodies stream from the PACS adapter into multipart/related as parts arrive: a study
// is never held in memory or on disk. Every request is authorized by PeerAccess and audited.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DicomJson, DicomRef, Pacs, QueryKeys, QueryOptions, InstancePart } from '../pacs/pacs.js';
import { NotFoundError } from '../pacs/pacs.js';
import { acceptedFrameSyntaxes, acceptedTransferSyntaxes, acceptsDicomJson } from '../dicom/accept.js';
import { sendMultipart } from '../http/multipart-reply.js';
import { part10Check } from '../dicom/part10-check.js';
import { HttpProblem } from '../http/problem.js';
import type { AuditLog } from '../store/audit.js';
import type { PeerAccess, PeerPrincipal, PeerScope } from './peer-access.js';

export interface PeerApiOptions {
  pacs: Pacs;
  access: PeerAccess;
  audit: AuditLog;
}

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;
const MAX_QIDO_LIMIT = 5000;

declare module 'fastify' {
  interface FastifyRequest {
    startedAt?: bigint;
    bytesOut?: number;
  }
}

type Params = { study?: string; series?: string; instance?: string; frames?: string };

export async function peerApi(app: FastifyInstance, opts: PeerApiOptions): Promise<void> {
  const { pacs, access, audit } = opts;

  app.addHook('onRequest', async (req) => {
    req.startedAt = process.hrtime.bigint();
    req.bytesOut = 0;
  });
  app.addHook('onSend', async (req, _reply, payload) => {
    if (typeof payload === 'string' || Buffer.isBuffer(payload)) req.bytesOut = Buffer.byteLength(payload as string);
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    const p = req.peerPrincipal;
    const s = req.peerScope;
    audit.record({
      direction: 'peer-in',
      actorDn: p?.dn,
      actorRpps: p?.rpps,
      route: req.routeOptions.url ?? req.url.split('?')[0],
      method: req.method,
      patientId: p?.patientId,
      studyUid: s?.study,
      seriesUid: s?.series,
      instanceUid: s?.instance,
      kosUid: p?.kosUid,
      status: reply.raw.writableFinished ? reply.statusCode : 499,
      outcome: req.problem?.slice(0, 300),
      bytes: req.bytesOut ?? 0,
      durationMs: Number(process.hrtime.bigint() - (req.startedAt ?? process.hrtime.bigint())) / 1e6,
    });
  });

  /** Validates path UIDs, then authorizes. Every route starts here. */
  async function authorize(req: FastifyRequest, level: PeerScope['level']): Promise<{ scope: PeerScope; principal: PeerPrincipal }> {
    const params = req.params as Params;
    for (const k of ['study', 'series', 'instance'] as const) {
      const v = params[k];
      if (v !== undefined && (v.length > 64 || !UID.test(v))) {
        throw new HttpProblem(400, 'Malformed UID', `${k} UID "${v.slice(0, 70)}" is not a valid DICOM UID`);
      }
    }
    const scope: PeerScope = { level, study: params.study, series: params.series, instance: params.instance };
    req.peerScope = scope;
    const principal = await access.authorize(req, scope);
    return { scope, principal };
  }

  // ---------- WADO-RS retrieve ----------
  const retrieve = (level: 'study' | 'series' | 'instance') => async (req: FastifyRequest, reply: FastifyReply) => {
    const accepted = acceptedTransferSyntaxes(req.headers.accept);
    const { principal } = await authorize(req, level);
    const p = req.params as Params;
    const ref: DicomRef = { study: p.study!, series: p.series, instance: p.instance };
    const abort = abortOnClose(reply);
    const parts = pacs.retrieve(ref, { transferSyntaxes: accepted, signal: abort.signal });
    const granted = grantFilter(principal, ref);
    return sendMultipart(reply, filterParts(parts, granted), {
      type: 'application/dicom',
      headersOf: (part) => ({
        'content-type': `application/dicom; transfer-syntax=${part.transferSyntaxUid}`,
        ...(part.length !== undefined ? { 'content-length': String(part.length) } : {}),
      }),
      // a short or unparsable instance from the PACS must not go out as part of a "complete" answer
      checkOf: (part) => part10Check({ length: part.length, transferSyntaxUid: part.transferSyntaxUid, sopInstanceUid: part.sopInstanceUid }),
      onBytes: countBytes(req),
    });
  };
  app.get('/studies/:study', retrieve('study'));
  app.get('/studies/:study/series/:series', retrieve('series'));
  app.get('/studies/:study/series/:series/instances/:instance', retrieve('instance'));

  // ---------- frames ----------
  app.get('/studies/:study/series/:series/instances/:instance/frames/:frames', async (req, reply) => {
    const accepted = acceptedFrameSyntaxes(req.headers.accept);
    await authorize(req, 'frames');
    const p = req.params as Required<Params>;
    const frames = frameList(p.frames);
    const abort = abortOnClose(reply);
    const parts = pacs.retrieveFrames({ study: p.study, series: p.series, instance: p.instance }, frames, {
      transferSyntaxes: accepted,
      signal: abort.signal,
    });
    return sendMultipart(reply, parts, {
      headersOf: (part) => ({ 'content-type': `${part.contentType}; transfer-syntax=${part.transferSyntaxUid}` }),
      onBytes: countBytes(req),
    });
  });

  // ---------- metadata ----------
  const metadata = (level: 'study' | 'series' | 'instance') => async (req: FastifyRequest, reply: FastifyReply) => {
    if (!acceptsDicomJson(req.headers.accept)) throw new HttpProblem(406, 'Not Acceptable', 'metadata is served as application/dicom+json');
    const { principal } = await authorize(req, level);
    const p = req.params as Params;
    const ref: DicomRef = { study: p.study!, series: p.series, instance: p.instance };
    const granted = grantFilter(principal, ref);
    const items = (await pacs.metadata(ref, abortOnClose(reply).signal)).filter((ds) => !granted || granted.has(sopInstanceOf(ds)));
    if (items.length === 0) throw new NotFoundError('nothing to describe for this request');
    return reply.type('application/dicom+json').send(items.map(withoutBulkDataUris));
  };
  app.get('/studies/:study/metadata', metadata('study'));
  app.get('/studies/:study/series/:series/metadata', metadata('series'));
  app.get('/studies/:study/series/:series/instances/:instance/metadata', metadata('instance'));

  // ---------- QIDO-RS ----------
  const search = (run: (p: Params, keys: QueryKeys, o: QueryOptions) => Promise<DicomJson[]>, level: 'study' | 'series' | 'instance') =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      if (!acceptsDicomJson(req.headers.accept)) throw new HttpProblem(406, 'Not Acceptable', 'QIDO-RS answers are application/dicom+json');
      const { principal } = await authorize(req, 'query');
      const p = req.params as Params;
      const { keys, options } = parseQido(req.query as Record<string, string | string[]>);
      options.signal = abortOnClose(reply).signal;
      let results = await run(p, keys, options);
      if (principal.grant) results = results.filter((ds) => grantCovers(principal, ds, level));
      return reply.type('application/dicom+json').send(results);
    };
  app.get('/studies', search((_p, k, o) => pacs.findStudies(k, o), 'study'));
  app.get('/series', search((_p, k, o) => pacs.findSeries(undefined, k, o), 'series'));
  app.get('/instances', search((_p, k, o) => pacs.findInstances(undefined, undefined, k, o), 'instance'));
  app.get('/studies/:study/series', search((p, k, o) => pacs.findSeries(p.study, k, o), 'series'));
  app.get('/studies/:study/instances', search((p, k, o) => pacs.findInstances(p.study, undefined, k, o), 'instance'));
  app.get('/studies/:study/series/:series/instances', search((p, k, o) => pacs.findInstances(p.study, p.series, k, o), 'instance'));
}

/** Frames of one request, at most per answer: a longer list is refused rather than served. */
export const MAX_FRAMES_PER_REQUEST = 256;

/** The distinct frame numbers of `frames/1,3,…`, in the order first asked (a repeat is served once). */
function frameList(raw: string): number[] {
  const asked = raw.split(',');
  if (asked.some((f) => !/^[1-9]\d{0,8}$/.test(f))) {
    throw new HttpProblem(400, 'Malformed frame list', 'frames must be a comma-separated list of positive integers');
  }
  const frames = [...new Set(asked.map(Number))];
  if (frames.length > MAX_FRAMES_PER_REQUEST) {
    throw new HttpProblem(400, 'Too many frames', `at most ${MAX_FRAMES_PER_REQUEST} frames per request; retrieve the instance instead`);
  }
  return frames;
}

const countBytes = (req: FastifyRequest) => (total: number) => { req.bytesOut = total; };

/** Aborts the PACS work when the client goes away before the answer is complete. */
function abortOnClose(reply: FastifyReply): AbortController {
  const ac = new AbortController();
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
  return ac;
}

/** Instance UIDs the principal's KOS grants within `ref`, or undefined when access is not KOS-restricted. */
function grantFilter(principal: PeerPrincipal, ref: DicomRef): Set<string> | undefined {
  if (!principal.grant) return undefined;
  const set = principal.grant.instancesOf(ref.study, ref.series);
  if (!set || set.size === 0) throw new HttpProblem(403, 'Not covered by the KOS', 'the KOS does not reference what is asked');
  return set;
}

async function* filterParts(parts: AsyncIterable<InstancePart>, granted: Set<string> | undefined): AsyncGenerator<InstancePart> {
  for await (const part of parts) {
    if (!granted || (part.sopInstanceUid && granted.has(part.sopInstanceUid))) {
      yield part;
    } else {
      part.body.resume(); // drain what the KOS does not grant
      await new Promise((r) => part.body.once('end', r).once('close', r));
    }
  }
}

function str(ds: DicomJson, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}
const sopInstanceOf = (ds: DicomJson) => str(ds, '00080018') ?? '';

function grantCovers(principal: PeerPrincipal, ds: DicomJson, level: 'study' | 'series' | 'instance'): boolean {
  const study = str(ds, '0020000D');
  if (!study) return false;
  if (level === 'study') return principal.grant!.covers({ level: 'study', study });
  const series = str(ds, '0020000E');
  if (level === 'series') return principal.grant!.covers({ level: 'series', study, series });
  return principal.grant!.covers({ level: 'instance', study, series, instance: sopInstanceOf(ds) });
}

/** Bulk data links would point at the PACS; peers fetch pixels through /frames instead. */
function withoutBulkDataUris(ds: DicomJson): DicomJson {
  const out: DicomJson = {};
  for (const [tag, el] of Object.entries(ds)) {
    if (el.BulkDataURI !== undefined) out[tag] = { vr: el.vr };
    else if (el.vr === 'SQ' && Array.isArray(el.Value)) out[tag] = { vr: 'SQ', Value: (el.Value as DicomJson[]).map(withoutBulkDataUris) };
    else out[tag] = el;
  }
  return out;
}

const KEY = /^([A-Za-z][A-Za-z0-9]{0,63}|[0-9A-Fa-f]{8})(\.([A-Za-z][A-Za-z0-9]{0,63}|[0-9A-Fa-f]{8}))*$/;

export function parseQido(query: Record<string, string | string[]>): { keys: QueryKeys; options: QueryOptions } {
  const keys: QueryKeys = {};
  const options: QueryOptions = {};
  for (const [name, raw] of Object.entries(query)) {
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.some((v) => v.length > 1024)) throw new HttpProblem(400, 'Query value too long', `${name.slice(0, 64)}: over 1024 characters`);
    const lower = name.toLowerCase();
    if (lower === 'limit' || lower === 'offset') {
      const n = Number(values[0]);
      if (!Number.isInteger(n) || n < 0) throw new HttpProblem(400, 'Bad query parameter', `${name} must be a non-negative integer`);
      if (lower === 'limit') options.limit = Math.min(n, MAX_QIDO_LIMIT);
      else options.offset = n;
    } else if (lower === 'includefield') {
      options.includeField = values.flatMap((v) => v.split(',')).filter(Boolean);
      for (const f of options.includeField) if (f !== 'all' && !KEY.test(f)) throw new HttpProblem(400, 'Bad query parameter', `includefield: "${f.slice(0, 64)}" is not an attribute`);
    } else if (lower === 'fuzzymatching') {
      options.fuzzy = values[0] === 'true';
    } else {
      if (!KEY.test(name)) throw new HttpProblem(400, 'Bad query parameter', `"${name.slice(0, 64)}" is not a DICOM attribute keyword or tag`);
      keys[name] = values[0];
    }
  }
  if (options.limit === undefined) options.limit = MAX_QIDO_LIMIT;
  return { keys, options };
}
