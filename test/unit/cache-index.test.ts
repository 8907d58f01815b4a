// The study cache's shared tables, on SQLite and PostgreSQL alike: one lease holder per series (a
// dead holder's lease taken over by exactly one instance), reader rows that keep another instance's
// eviction off a series, pins.
import t from 'tap';
import { forEachStore } from '../helpers/stores.js';
import { CacheIndex } from '../../gateway/src/consumer/cache-index.js';
import { StudyCache } from '../../gateway/src/consumer/study-cache.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const key = { source: '1.2.3', kosUid: '1.2.3.9', seriesUid: '1.2.3.1.1' };
const row = { ...key, studyUid: '1.2.3.1', expected: ['1.2.3.1.1.1', '1.2.3.1.1.2'] };
const a = { instance: 'gw-a', token: 'a1' };
const b = { instance: 'gw-b', token: 'b1' };

forEachStore(t, 'one lease holder per series; an expired lease is taken over once', async (t, store) => {
  const idx = new CacheIndex(store);
  const now = 1_000_000;
  t.equal(await idx.claim(key.seriesUid, a, 'fetch', now, 30_000), true, 'a free series: the first asker holds it');
  t.equal(await idx.claim(key.seriesUid, b, 'fetch', now + 1, 30_000), false, 'held and alive: another instance waits');
  t.match(await idx.lease(key.seriesUid), { instance: 'gw-a', purpose: 'fetch', expiresAt: now + 30_000 });
  t.equal(await idx.renew(key.seriesUid, b, now + 60_000), false, 'only its holder renews it');
  await idx.release(key.seriesUid, b);
  t.ok(await idx.lease(key.seriesUid), 'nor does another instance release it');
  t.equal(await idx.renew(key.seriesUid, a, now + 40_000), true);
  t.equal(await idx.claim(key.seriesUid, b, 'fetch', now + 35_000, 30_000), false, 'renewed: still alive');

  // the holder dies: its lease runs out; two instances race to take it over, one wins
  const later = now + 40_001;
  const c = { instance: 'gw-c', token: 'c1' };
  const won = await Promise.all([idx.claim(key.seriesUid, b, 'fetch', later, 30_000), idx.claim(key.seriesUid, c, 'fetch', later, 30_000)]);
  t.equal(won.filter(Boolean).length, 1, 'exactly one takes an expired lease over');
  t.equal(await idx.renew(key.seriesUid, a, later + 1), false, 'the old holder has lost it');
  const winner = won[0] ? b : c;
  await idx.release(key.seriesUid, winner);
  t.equal(await idx.lease(key.seriesUid), undefined, 'released by its holder: free again');
});

forEachStore(t, 'eviction leaves what another instance reads or pins; its own readers are its own business', async (t, store) => {
  const idx = new CacheIndex(store);
  const now = 2_000_000;
  await idx.begin(row, now);
  await idx.complete(key, 1234, now);
  t.match(await idx.row(key), { state: 'complete', bytes: 1234, fetchedAt: now, lastAccess: now });
  t.equal(await idx.totalBytes(), 1234);

  await idx.publishReader('gw-b', key, 'r1', now + 10_000);
  t.equal(await idx.dropIfIdle(key, 'gw-a', now), false, 'another instance reads it: kept');
  t.equal(await idx.dropIfIdle(key, 'gw-b', now), true, 'the reader itself decides for its own reads (in memory)');
  await idx.begin(row, now);

  await idx.publishReader('gw-b', key, 'r2', now + 10_000); // published again, by a newer read
  await idx.dropReader('gw-b', key, 'r1');
  t.equal(await idx.dropIfIdle(key, 'gw-a', now), false, 'withdrawing an older publication leaves the newer one');
  t.equal(await idx.dropIfIdle(key, 'gw-a', now + 10_001), true, 'a reader row not renewed (its instance died) counts for nothing');

  await idx.begin(row, now);
  await idx.pin('screening:1', key.source, key.kosUid);
  t.equal((await idx.unpinned()).length, 0, 'pinned: not a candidate');
  t.equal(await idx.dropIfIdle(key, 'gw-a', now), false, 'pinned: kept');
  await idx.unpin('screening:1');
  t.same((await idx.unpinned()).map((r) => r.seriesUid), [key.seriesUid]);
  t.equal(await idx.touch(key, now + 5), true);
  t.equal(await idx.dropIfIdle(key, 'gw-a', now + 10_001), true, 'unpinned, its reader gone: dropped');
  t.equal(await idx.touch(key, now + 6), false, 'a reader touching an evicted row learns it is gone');
  t.equal(await idx.namesSeries(key.seriesUid), false);
});

forEachStore(t, 'an instance restarting gives up what its previous life held', async (t, store) => {
  const idx = new CacheIndex(store);
  await idx.claim(key.seriesUid, a, 'fetch', 1, 10 ** 12);
  await idx.publishReader('gw-a', key, 'r', 10 ** 12);
  await idx.releaseInstance('gw-a');
  t.equal(await idx.lease(key.seriesUid), undefined);
  t.equal(await idx.claim(key.seriesUid, b, 'fetch', 2, 1000), true, 'free for the others at once');
});

forEachStore(t, 'a pinned series does not expire: an open screening batch keeps its images past the TTL', async (t, store) => {
  let now = 3_000_000;
  const cache = new StudyCache(store, { dir: mkdtempSync(join(tmpdir(), 'cache-ttl-')), maxBytes: 1e9, ttlMs: 60_000, peer: undefined as never, now: () => now });
  t.teardown(() => cache.drain());
  const idx = new CacheIndex(store);
  await idx.begin(row, now);
  await idx.complete(key, 1234, now);
  await cache.pin('screening:7', key.source, key.kosUid);
  now += 120_000; // past the TTL
  t.equal(await cache.state(key), 'complete', 'pinned: still complete past the TTL');
  await cache.unpin('screening:7');
  t.equal(await cache.state(key), 'absent', 'unpinned: the TTL applies again');
});
