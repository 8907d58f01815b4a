// Security headers on every listener (@fastify/helmet). The default CSP is the one for documents the
// box relays from other centres (CDA/HTML reports…): opened outside the viewer's iframe, such a
// document still runs no script, loads nothing and reaches nothing of the box's origin (`sandbox`
// gives it an opaque origin). The box's own pages set a CSP of their own (viewer, launcher…).
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

export const DOCUMENT_CSP = {
  defaultSrc: ["'none'"],
  sandbox: [] as string[],
  baseUri: ["'none'"],
  formAction: ["'none'"],
  frameAncestors: ["'self'"], // the viewer frames reports
};

/** PDF reports: a sandboxed document cannot host the browser's PDF viewer, so no `sandbox` (PDF scripts never reach the page's DOM). */
const PDF_CSP = { defaultSrc: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"], frameAncestors: ["'self'"] };

export async function securityHeaders(app: FastifyInstance): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: DOCUMENT_CSP },
    strictTransportSecurity: { maxAge: 365 * 24 * 3600, includeSubDomains: true },
    // not no-referrer: under it browsers send `Origin: null` on form posts, and the launcher's own
    // contextual call could no longer be told from a foreign one
    referrerPolicy: { policy: 'same-origin' },
    xFrameOptions: { action: 'sameorigin' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: false,
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    // (getHeader also sees what helmet set on the raw response: the default is still in place)
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/pdf') && /(^|;)sandbox(;|$)/.test(String(reply.getHeader('content-security-policy')))) {
      reply.helmet({ contentSecurityPolicy: { useDefaults: false, directives: PDF_CSP } });
    }
    return payload;
  });
}
