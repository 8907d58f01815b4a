// Admin view of the publication outbox on the user listener: list/filter jobs, one job, its current
// KOS as Part 10, and a retry action. Every route needs `Authorization: Bearer <admin.token>`.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpProblem } from '../http/problem.js';
import { JOB_STATUSES, type JobStatus, type JobWithStatus, type PublicationRepository, type PublishedKos } from './publication/repository.js';

export interface AdminOptions {
  repo: PublicationRepository;
  token: string;
  /** new work for the worker (after a retry) */
  kick: () => void;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

function requireAdmin(req: FastifyRequest, expected: Buffer): void {
  const h = req.headers.authorization;
  if (!h) throw new HttpProblem(401, 'Admin credential required', 'send Authorization: Bearer <admin token>');
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  // compare digests: constant time whatever the lengths
  if (!m || !timingSafeEqual(digest(m[1]), expected)) throw new HttpProblem(403, 'Admin credential refused', 'the admin token is not valid');
}

/** The admin credential check, for admin routes of other components (e.g. the allow-list refresh). */
export function adminCheck(token: string): (req: FastifyRequest) => void {
  const expected = digest(token);
  return (req) => requireAdmin(req, expected);
}

function kosView(k: PublishedKos | undefined) {
  if (!k) return undefined;
  return {
    sopInstanceUid: k.sopInstanceUid,
    status: k.status,
    instances: k.instanceCount,
    studies: k.studies.map((s) => s.studyUid),
    kosEntryUuid: k.kosEntryUuid,
    reportEntryUuid: k.reportEntryUuid,
    publishedAt: k.publishedAt ? new Date(k.publishedAt).toISOString() : undefined,
  };
}

/**
 * `state` says what happened (published, retrying with its last error, failed with its reason…);
 * `step` is where the job is in the pipeline (received → resolving → kos-built → submitted → done),
 * which is where a retry resumes.
 */
async function jobView(j: JobWithStatus, repo: PublicationRepository, detail = false) {
  const settled = j.state === 'done' || j.state === 'failed';
  const view: Record<string, unknown> = {
    id: j.id,
    kind: j.kind,
    state: j.status,
    step: j.state,
    ...(j.failedAtState ? { failedAtStep: j.failedAtState } : {}),
    ...(j.status === 'failed' ? { reason: j.lastError } : { lastError: j.lastError }),
    setId: j.setId,
    documentId: j.documentId,
    version: j.version,
    controlId: j.controlId,
    studies: j.studyUids,
    attempts: j.attempts,
    note: j.note,
    waitingForStudySince: j.status === 'waiting-for-study' && j.studyWaitingSince ? new Date(j.studyWaitingSince).toISOString() : undefined,
    nextAttemptAt: settled ? undefined : new Date(j.nextAttemptAt).toISOString(),
    createdAt: new Date(j.createdAt).toISOString(),
    updatedAt: new Date(j.updatedAt).toISOString(),
    kosUid: j.kosId ? (await repo.kos(j.kosId))?.sopInstanceUid : undefined,
  };
  if (detail) {
    view.kos = kosView(j.kosId ? await repo.kos(j.kosId) : undefined);
    view.replaces = kosView(j.targetKosId ? await repo.kos(j.targetKosId) : undefined);
    view.currentKos = kosView(await repo.currentOfSet(j.setId));
  }
  return view;
}

function intParam(v: unknown, name: string, def: number, min: number, max: number): number {
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpProblem(400, `Bad ${name}`, `${name} must be an integer from ${min} to ${max}`);
  return n;
}

async function jobId(params: unknown, repo: PublicationRepository): Promise<JobWithStatus> {
  const raw = (params as { id: string }).id;
  if (!/^\d{1,12}$/.test(raw)) throw new HttpProblem(400, 'Bad publication id', 'the id is a positive integer');
  const job = await repo.jobWithStatus(Number(raw));
  if (!job) throw new HttpProblem(404, 'No such publication', `no publication job ${raw}`);
  return job;
}

export function adminRoutes(app: FastifyInstance, o: AdminOptions): void {
  const expected = digest(o.token);
  const { repo } = o;
  app.register(async (admin) => {
    admin.addHook('onRequest', async (req) => requireAdmin(req, expected));

    admin.get('/admin/publications', async (req) => {
      const q = req.query as Record<string, string | undefined>;
      if (q.state && !JOB_STATUSES.includes(q.state as JobStatus)) {
        throw new HttpProblem(400, 'Bad state', `state must be one of ${JOB_STATUSES.join(', ')}`);
      }
      const page = intParam(q.page, 'page', 1, 1, 1_000_000);
      const pageSize = intParam(q.pageSize, 'pageSize', 50, 1, 500);
      const { items, total } = await repo.list({ status: q.state as JobStatus | undefined, page, pageSize });
      return { page, pageSize, total, items: await Promise.all(items.map((j) => jobView(j, repo))) };
    });

    admin.get('/admin/publications/:id', async (req) => jobView(await jobId(req.params, repo), repo, true));

    admin.get('/admin/publications/:id/kos', async (req, reply) => {
      const job = await jobId(req.params, repo);
      const current = await repo.currentOfSet(job.setId);
      const part10 = current ? await repo.kosPart10(current.id) : undefined;
      if (!current || !part10) throw new HttpProblem(404, 'No current KOS', 'this publication has no KOS currently published');
      return reply
        .type('application/dicom')
        .header('content-disposition', `attachment; filename="${current.sopInstanceUid}.dcm"`)
        .send(part10);
    });

    admin.post('/admin/publications/:id/retry', async (req, reply) => {
      const job = await jobId(req.params, repo);
      if (job.state !== 'failed') throw new HttpProblem(409, 'Not failed', `publication ${job.id} is ${job.status}; only a failed publication can be retried`);
      await repo.retry(job.id);
      const again = (await repo.jobWithStatus(job.id))!;
      o.kick();
      return reply.code(202).send(await jobView(again, repo, true));
    });
  });
}
