// Maps every error a route can throw to a problem+json answer (or, once a stream has started, to an
// aborted connection: a truncated multipart must never look complete).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem, sendProblem } from './problem.js';
import { AcceptError } from '../dicom/accept.js';
import { NotAcceptableError, NotFoundError, PacsUnavailableError } from '../pacs/pacs.js';

export function problemFor(err: unknown): { status: number; title: string; detail?: string; extra?: Record<string, unknown> } {
  if (err instanceof HttpProblem) return { status: err.status, title: err.title, detail: err.detail, extra: err.extra };
  if (err instanceof AcceptError) return { status: err.status, title: err.status === 406 ? 'Not Acceptable' : 'Bad Accept header', detail: err.message };
  if (err instanceof NotFoundError) return { status: 404, title: 'Not Found', detail: err.message };
  if (err instanceof NotAcceptableError) return { status: 406, title: 'Not Acceptable', detail: err.message };
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
