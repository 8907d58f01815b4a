// The screening repository on SQLite and PostgreSQL: a batch and its cases in one transaction, the
// totals, a verdict recorded once whoever races, retryable failures queued again, startable order.
import t from 'tap';
import type { Kysely } from 'kysely';
import { forEachStore } from '../helpers/stores.js';
import { ScreeningRepository } from '../../gateway/src/screening/repository.js';
import type { ScreeningBatchRow, ScreeningCaseRow, ScreeningSchema } from '../../gateway/src/screening/schema.js';

const batch = (id: string, created_at: string): ScreeningBatchRow => ({
  id, name: id, state: 'prefetching', pause_reason: null, created_at, created_by_rpps: '10001234567', created_by_name: 'X',
  due_date: null, priors_wanted: 1, tokens_sealed: null, closed_at: null,
});
const kase = (batchId: string, position: number, state = 'queued'): Omit<ScreeningCaseRow, 'updated_at'> => ({
  id: `${batchId}-${position}`, batch_id: batchId, position, state, error: null, retryable: 0, attempts: 0, next_attempt_at: null,
  row_json: '{}', source: null, resolved_json: null, instances_done: position, instances_total: 10, bytes_done: 1000 * position,
  verdict_json: null, verdict_request_id: null, deferral_json: null,
});

forEachStore(t, 'screening repository', async (t, store) => {
  const repo = new ScreeningRepository(store.db as unknown as Kysely<ScreeningSchema>);
  await repo.createBatch(batch('b1', '2026-01-01T00:00:00Z'), Array.from({ length: 1200 }, (_, i) => kase('b1', i + 1)));
  await repo.createBatch(batch('b2', '2026-01-02T00:00:00Z'), [kase('b2', 1), kase('b2', 2, 'failed')]);
  // a duplicate position fails the whole batch: nothing of it stays
  await t.rejects(repo.createBatch(batch('b3', '2026-01-03T00:00:00Z'), [kase('b3', 1), { ...kase('b3', 1), id: 'other' }]));
  t.equal(await repo.batch('b3'), undefined, 'no half-created batch');
  t.same((await repo.batches()).map((b) => b.id), ['b2', 'b1'], 'newest first');

  const tot = (await repo.totals()).get('b2')!;
  t.match(tot, { total: 2, queued: 1, failed: 1, ready: 0, read: 0, instances_done: 3, instances_total: 20, bytes_done: 3000 });
  t.equal((await repo.totals('b1')).get('b1')!.total, 1200);

  const first = await repo.startable(3, []);
  t.same(first.map((c) => c.id), ['b1-1', 'b1-2', 'b1-3'], 'oldest batch first, in reading order');
  t.same((await repo.startable(2, ['b1-1'])).map((c) => c.id), ['b1-2', 'b1-3']);

  const [a, b] = await Promise.all([repo.recordVerdict('b2-1', 'req-a', '{"x":1}'), repo.recordVerdict('b2-1', 'req-b', '{"x":2}')]);
  t.ok(a !== b, 'one of two racing verdicts wins');
  t.equal((await repo.totals('b2')).get('b2')!.read, 1);

  await repo.updateCase('b2-2', { retryable: 1 });
  t.same(await repo.requeueRetryable(new Date(Date.now() + 1000).toISOString()), ['b2'], 'a retryable failure is queued again');
  t.equal((await repo.case('b2', 'b2-2'))!.state, 'queued');
  t.ok(await repo.updateBatch('b2', { state: 'ready' }, ['prefetching']));
  t.notOk(await repo.updateBatch('b2', { state: 'ready' }, ['prefetching']), 'conditional on the state');
  t.equal(await repo.openBatchBytes(), (1200 * 1201 / 2) * 1000 + 3000);

  await repo.putSession({ case_id: 'b2-1', rpps: '1', session_sealed: 's1', expires_at: 'x' });
  await repo.putSession({ case_id: 'b2-1', rpps: '1', session_sealed: 's2', expires_at: 'y' });
  t.equal((await repo.session('b2-1', '1'))!.session_sealed, 's2');
  await repo.deleteBatch('b2');
  t.equal(await repo.batch('b2'), undefined);
  t.equal(await repo.session('b2-1', '1'), undefined);
});
