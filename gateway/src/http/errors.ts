// Maps every error a route can throw to a problem+json answer (or, once a stream has started, to an
// aborted connection: a truncated multipart must never look complete).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem, sendProblem } from './problem.js';
import { AcceptError } from '../dicom/accept.js';
import { FrameRangeError } from '../dicom/part10.js';
import { NotAcceptableError, NotFoundError, PacsTimeoutError, PacsUnavailableError } from '../pacs/pacs.js';

export function problemFor(err: unknown): { status: number; title: string; detail?: string; extra?: Record<string, unknown> } {
  if (err instanceof HttpProblem) return { status: err.status, title: err.title, detail: err.detail, extra: err.extra };
  if (err instanceof AcceptError) return { status: err.status, title: err.status === 406 ? 'Not Acceptable' : 'Bad Accept header', detail: err.message };
  if (err instanceof FrameRangeError) return { status: 404, title: 'Frame not found', detail: err.message };
  if (err instanceof NotFoundError) return { status: 404, title: 'Not Found', detail: err.message };
  if (err instanceof NotAcceptableError) return { status: 406, title: 'Not Acceptable', detail: err.message };
  if (err instanceof PacsTimeoutError) return { status: 504, title: 'PACS timeout', detail: 'the PACS did not answer in time' };
  if (err instanceof PacsUnavailableError) return { status: 502, title: 'PACS unavailable', detail: 'the PACS did not answer or failed while answering' };
  const fe = err as FastifyError;
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, title: 'Bad Request', detail: fe.message };
  }
  return { status: 500, title: 'Internal Server Error' };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** title and detail of the problem answered, for the audit trail */
    problem?: string;
  }
}

/**
 * Fastify's own refusals before routing (a path parameter over maxParamLength → 414, a URL that does
 * not decode → 400) as problem+json too: pass as the `frameworkErrors` server option.
 */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  void sendProblem(reply, status, status === 414 ? 'URI Too Long' : 'Bad Request', status === 414 ? 'a path segment of the URL is too long' : 'the URL is malformed');
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const p = problemFor(err);
    req.problem = p.detail ? `${p.title}: ${p.detail}` : p.title;
    if (p.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ status: p.status, title: p.title }, 'request refused');
    if (reply.raw.headersSent) {
      reply.raw.destroy(err instanceof Error ? err : undefined);
      return;
    }
    return sendProblem(reply, p.status, p.title, p.detail, p.extra);
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, 404, 'Not Found', `no route for ${req.method} ${req.url.split('?')[0]}`));
}
