// A stand-in for the consumer box's viewer routes, for the viewer's end-to-end tests: serves the
// built viewer at /viewer/, session documents, reports, a fake import job, logout, and a DICOMweb
// proxy to a real Orthanc that answers 410 for withdrawn studies and 403 for forbidden ones.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { Readable } from 'node:stream';
import { parseContentType, readMultipart } from '../../../gateway/src/dicom/multipart.js';
import { prefersSinglePartFrame } from '../../../gateway/src/dicom/accept.js';
import fastifyStatic from '@fastify/static';
import { freePort } from '../../helpers/ports.js';

export interface TestSession {
  id: string;
  document: Record<string, unknown>;
  withdrawn?: string[];
  forbidden?: string[];
  reports?: Record<string, { mediaType: string; body: Buffer | string }>;
}

export interface ViewerServer {
  url: string;
  app: FastifyInstance;
  logouts: number;
  /** last requests (method, url, status) for failure reports */
  requests: string[];
  imports: { studyUid: string }[];
  /** the next `n` frame requests of instance `sopUid` answer 503 (a busy server) */
  failFrames(sopUid: string, n: number): void;
  /** frame requests answered 503 by failFrames so far */
  framesFailed: number;
  /** what went wrong on this side of the browser (Orthanc's non-2xx answers, handler errors), for failure reports */
  upstreamFailures: string[];
  close(): Promise<void>;
}

const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-src 'self'; object-src 'none'; base-uri 'none'";

export async function startViewerServer(opts: { distDir: string; orthancDicomWeb: string; sessions: TestSession[] }): Promise<ViewerServer> {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  app.addHook('onError', async (req, _reply, e) => { out.upstreamFailures.push(`${req.url.slice(-80)}: ${String(e).slice(0, 200)}`); });
  const sessions = new Map(opts.sessions.map((s) => [s.id, s]));
  const failing = new Map<string, number>();
  const out: ViewerServer = {
    url: '', app, logouts: 0, requests: [], imports: [], framesFailed: 0, upstreamFailures: [], close: () => app.close(),
    failFrames: (sop, n) => { failing.set(sop, n); },
  };
  const jobs = new Map<string, { polls: number; total: number }>();

  app.addHook('onResponse', async (req, reply) => {
    out.requests.push(`${req.method} ${req.url.slice(0, 120)} ${reply.statusCode}`);
    if (out.requests.length > 200) out.requests.shift();
  });
  await app.register(fastifyStatic, {
    root: opts.distDir, prefix: '/viewer/', decorateReply: false,
    setHeaders(res, path) {
      res.header('Content-Security-Policy', CSP);
      if (path.endsWith('.wasm')) res.header('Content-Type', 'application/wasm');
    },
  });

  const find = (id: string) => sessions.get(id);
  app.get<{ Params: { id: string } }>('/api/sessions/:id', async (req, reply) => {
    const s = find(req.params.id);
    if (!s) return reply.code(404).type('application/problem+json').send({ title: 'session inconnue', status: 404 });
    if (req.params.id === 'forbidden') return reply.code(403).send({ status: 403 });
    return s.document;
  });
  app.get<{ Params: { id: string; doc: string } }>('/api/sessions/:id/reports/:doc', async (req, reply) => {
    const r = find(req.params.id)?.reports?.[req.params.doc];
    if (!r) return reply.code(404).send();
    return reply.type(r.mediaType).send(r.body);
  });
  app.post<{ Params: { id: string }; Body: { studyUid: string } }>('/api/sessions/:id/import', async (req, reply) => {
    if (!find(req.params.id)) return reply.code(404).send();
    const jobId = `job-${jobs.size + 1}`;
    jobs.set(jobId, { polls: 0, total: 4 });
    out.imports.push({ studyUid: req.body.studyUid });
    return reply.code(202).send({ jobId });
  });
  app.get<{ Params: { id: string; job: string } }>('/api/sessions/:id/import/:job', async (req, reply) => {
    const j = jobs.get(req.params.job);
    if (!j) return reply.code(404).send();
    j.polls++;
    const stored = Math.min(j.total, j.polls);
    return { done: stored === j.total, total: j.total, stored, failed: 0, state: stored === j.total ? 'completed' : 'running' };
  });
  app.post('/auth/logout', async (_req, reply) => { out.logouts++; return reply.code(204).send(); });

  // DICOMweb proxy. Orthanc transcodes frames to Explicit VR LE unless asked for transfer-syntax=*.
  app.get<{ Params: { id: string; '*': string } }>('/api/sessions/:id/dicom-web/*', async (req, reply) => {
    const s = find(req.params.id);
    if (!s) return reply.code(404).send();
    const rest = req.params['*'];
    const studyUid = /^studies\/([^/]+)/.exec(rest)?.[1];
    if (studyUid && s.withdrawn?.includes(studyUid)) return reply.code(410).type('application/problem+json').send({ title: 'examen retiré', status: 410 });
    if (studyUid && s.forbidden?.includes(studyUid)) return reply.code(403).type('application/problem+json').send({ title: 'accès refusé', status: 403 });
    const framesOf = /\/instances\/([^/]+)\/frames\//.exec(rest)?.[1];
    if (framesOf && (failing.get(framesOf) ?? 0) > 0) {
      failing.set(framesOf, failing.get(framesOf)! - 1);
      out.framesFailed++;
      return reply.code(503).type('application/problem+json').send({ title: 'occupé', status: 503 });
    }
    const q = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    let accept = String(req.headers.accept ?? '*/*');
    // one frame single part when asked, as the consumer answers (Orthanc answers frames multipart only)
    if (/\/frames\/\d+$/.test(rest) && prefersSinglePartFrame(accept)) return singlePartFrame(`${opts.orthancDicomWeb}/${rest}${q}`, reply);
    if (/\/frames\//.test(rest) && accept.includes('multipart/related') && !accept.includes('transfer-syntax')) accept += '; transfer-syntax=*';
    const r = await fetch(`${opts.orthancDicomWeb}/${rest}${q}`, { headers: { accept } });
    const body = r.ok ? Buffer.from(await r.arrayBuffer()) : await orthancFailure(rest, r);
    reply.code(r.status);
    const ct = r.headers.get('content-type');
    if (ct) reply.header('content-type', ct);
    return reply.send(body);
  });

  async function orthancFailure(url: string, r: Response): Promise<Buffer> {
    const body = Buffer.from(await r.arrayBuffer());
    out.upstreamFailures.push(`Orthanc ${r.status} for …${url.slice(-80)}: ${body.toString('utf8', 0, 200)}`);
    return body;
  }

  async function singlePartFrame(url: string, reply: FastifyReply): Promise<FastifyReply> {
    const r = await fetch(url, { headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' } });
    if (!r.ok || !r.body) return reply.code(r.status).send(await orthancFailure(url, r));
    const ct = parseContentType(r.headers.get('content-type') ?? '');
    for await (const part of readMultipart(Readable.fromWeb(r.body as never), ct.params.boundary)) {
      return reply.type(part.headers['content-type'] ?? 'application/octet-stream').send(Buffer.concat(await part.body.toArray()));
    }
    return reply.code(404).send();
  }

  const port = await freePort();
  await app.listen({ host: '127.0.0.1', port });
  out.url = `http://127.0.0.1:${port}`;
  return out;
}
