// Import jobs shared by instances, on SQLite and PostgreSQL alike: any instance answers a job's status
// (running on another, alive instance: running, with its counts); a starting instance fails only the
// jobs that will never finish — its own from before its restart, and those of an instance silent past
// JOB_STALE_MS — and drops their cache pins; it leaves a live instance's jobs alone.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forEachStore } from '../helpers/stores.js';
import { foreignClient } from '../helpers/pki.js';
import type { Store } from '../../gateway/src/store/database.js';
import { ImportJobs, INTERRUPTED, JOB_STALE_MS } from '../../gateway/src/consumer/import-jobs.js';
import { StudyCache } from '../../gateway/src/consumer/study-cache.js';
import { PeerClient } from '../../gateway/src/consumer/peer-client.js';
import { FolderPacs } from '../../gateway/src/pacs/folder.js';

async function instance(t: { teardown(fn: () => unknown): void }, store: Store, name: string, now: () => number) {
  const dir = mkdtempSync(join(tmpdir(), 'import-jobs-'));
  const id = await foreignClient(); // the peer client is never used here: no fetch happens
  const pem = { cert: readFileSync(id.cert, 'utf8'), key: readFileSync(id.key, 'utf8') };
  const peer = new PeerClient({ tls: { ...pem, ca: pem.cert }, isUrlAllowed: () => false });
  const cache = new StudyCache(store, { dir: join(dir, 'cache'), maxBytes: 1024 ** 3, ttlMs: 3600_000, peer, instance: name });
  const jobs = new ImportJobs(store, cache, new FolderPacs(store, { kind: 'folder', path: join(dir, 'pacs') }), name, undefined, undefined, now);
  t.teardown(async () => { await jobs.drain(); await cache.drain(); await peer.close(); rmSync(dir, { recursive: true, force: true }); });
  return { jobs, cache };
}

const running = (id: string, owner: string, heartbeatAt: number) => ({
  id, call_hash: 'call-1', rpps: '10001234567', study_uid: '1.2.3', series_uid: null, state: 'running', total: 10, stored: 3, failed: 0,
  results_json: '[]', error: null, created_at: heartbeatAt, owner, heartbeat_at: heartbeatAt,
});
const pins = async (store: Store, owner: string) => (await store.db.selectFrom('consumer_cache_pins').select('owner').where('owner', '=', owner).execute()).length;
const stateOf = async (store: Store, id: string) => store.db.selectFrom('consumer_import_jobs').select(['state', 'error']).where('id', '=', id).executeTakeFirst();

forEachStore(t, 'a job running on another, live instance reads running anywhere; once that instance is silent, failed', async (t, store) => {
  let now = 10_000_000;
  const b = await instance(t, store, 'gw-b', () => now);
  await store.db.insertInto('consumer_import_jobs').values(running('job-1', 'gw-a', now)).execute();
  await b.cache.pin('import:job-1', '1.2.3', '1.2.3.9');

  t.match(await b.jobs.get('job-1', 'call-1'), { done: false, state: 'running', total: 10, stored: 3 }, 'the other instance answers: running, its counts');
  t.equal(await b.jobs.get('job-1', 'call-2'), undefined, 'another viewer session does not see it');
  t.equal(await b.jobs.recover(), 0, 'a starting instance leaves a live instance\'s job alone');
  t.match(await stateOf(store, 'job-1'), { state: 'running' });

  now += JOB_STALE_MS + 1; // gw-a died: no heartbeat since
  t.match(await b.jobs.get('job-1', 'call-1'), { done: true, state: 'failed', stored: 3, failed: 7, error: INTERRUPTED }, 'silent too long: interrupted');
  t.equal(await b.jobs.recover(), 1);
  t.same(await stateOf(store, 'job-1'), { state: 'failed', error: INTERRUPTED }, 'the table says so');
  t.equal(await pins(store, 'import:job-1'), 0, 'its cache pin dropped');
});

forEachStore(t, 'an instance restarting fails its own jobs from before at once', async (t, store) => {
  const now = 20_000_000;
  await store.db.insertInto('consumer_import_jobs').values(running('job-2', 'gw-a', now)).execute();
  await store.db.insertInto('consumer_import_jobs').values(running('job-3', 'gw-c', now)).execute();
  const a = await instance(t, store, 'gw-a', () => now + 1000);
  t.match(await a.jobs.get('job-2', 'call-1'), { done: true, state: 'failed', error: INTERRUPTED }, 'its own job, not live in this process: interrupted');
  t.equal(await a.jobs.recover(), 1, 'only its own');
  t.same(await stateOf(store, 'job-2'), { state: 'failed', error: INTERRUPTED });
  t.match(await stateOf(store, 'job-3'), { state: 'running' }, 'another live instance\'s job keeps running');
});
