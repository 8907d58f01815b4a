// A series served progressively by the consumer: with a slow source PACS (box A reads Orthanc A
// through a throttled relay), the series metadata answers and the image the viewer is about to draw
// (RFC 9218 "Priority: u=0") is served while the single upstream series fetch is still landing; the
// rest follows as it lands, and the whole series is then served from the cache.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { readInfo } from '../../gateway/src/dicom/part10.js';
import { startConsumerNetwork, callForm, openSession, relabelStudy, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent, sqliteOf } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { makeCtStudy } from '../e2e/helpers/ct-series.js';

const SLICES = 40;
let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;

t.before(async () => {
  net = await startConsumerNetwork({ consumerOrthanc: false, sourcePacsRelay: true });
  agent = await mtlsAgent();
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

const FRAME = 'application/octet-stream; transfer-syntax=*';

t.test('metadata and the urgent image are served before the series has landed; then every slice', async (t) => {
  const ct = makeCtStudy(SLICES);
  const pub = await net.publish(await relabelStudy(ct.files.slice(0, SLICES), 'progressive-ct'), { accession: 'PROG-CT' });
  const seriesUid = pub.series[0].seriesUid;
  const key = { source: net.boxA.config.box.retrieveLocationUid, kosUid: pub.kosUid, seriesUid };
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const root = `${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}/series/${seriesUid}`;
  const get = (path: string, accept: string, headers: Record<string, string> = {}) => request(`${root}${path}`, { dispatcher: agent, headers: { cookie, accept, ...headers } });
  const cache = net.consumer.cache;
  const landed = async () => (await cache.store.instances({ study: pub.studyUid, series: seriesUid })).length;

  // ≈ 32 KB a slice: the series takes seconds to come through, one instance a fraction of one
  net.sourcePacsRelay!.throttle(150_000);
  const fetchesBefore = cache.fetches;
  const meta = await get('/metadata', 'application/dicom+json');
  t.equal(meta.statusCode, 200, 'series metadata answered');
  const items = await meta.body.json() as Record<string, { Value?: unknown[] }>[];
  const atMetadata = await landed();
  t.equal(items.length, SLICES, 'every slice the KOS references is described');
  t.not(await cache.state(key), 'complete', `the series had not landed when its metadata was answered (${atMetadata}/${SLICES} instances in the cache)`);
  t.ok(atMetadata < SLICES / 2, `most of the series was still to come (${atMetadata}/${SLICES})`);

  // the slice the viewer draws first, asked for as urgent, while it is not in the cache yet
  const present = new Set((await cache.store.instances({ study: pub.studyUid, series: seriesUid })).map((r) => r.sop_uid));
  const sops = items.map((m) => String(m['00080018'].Value![0]));
  const middle = [...sops].reverse().find((s) => !present.has(s))!;
  const frame = await get(`/instances/${middle}/frames/1`, FRAME, { priority: 'u=0' });
  t.equal(frame.statusCode, 200, 'the urgent slice is served');
  const bytes = Buffer.from(await frame.body.arrayBuffer());
  t.equal(bytes.length, 128 * 128 * 2, 'its whole frame');
  const atFrame = await landed();
  t.not(await cache.state(key), 'complete', `served while the series was still landing (${atFrame}/${SLICES} instances in the cache)`);
  t.ok(cache.instanceFetches >= 1, 'fetched alone, ahead of its series');

  // a slice asked for without urgency waits for the series fetch, and comes with it
  const others = sops.filter((s) => s !== middle);
  const all = await Promise.all(others.map(async (s) => {
    const r = await get(`/instances/${s}/frames/1`, FRAME);
    return { status: r.statusCode, bytes: (await r.body.arrayBuffer()).byteLength };
  }));
  t.ok(all.every((r) => r.status === 200 && r.bytes === 128 * 128 * 2), 'every other slice is served as it lands');
  await waitFor(async () => (await cache.state(key)) === 'complete', 60_000, 'the series complete in the cache');
  t.equal(cache.fetches - fetchesBefore, 1, 'one upstream series fetch (single-flight holds)');
  const seriesGets = sqliteOf(net.boxA).prepare(`SELECT COUNT(*) AS n FROM audit WHERE direction = 'peer-in' AND series_uid = ? AND route LIKE '%/studies/:study/series/:series'`).get(seriesUid) as { n: number };
  t.equal(seriesGets.n, 1, 'box A audited one series retrieve');

  // once complete: metadata from the cache, unthrottled or not
  net.sourcePacsRelay!.throttle(undefined);
  const again = await get('/metadata', 'application/dicom+json');
  t.equal((await again.body.json() as unknown[]).length, SLICES, 'metadata from the cache');
});

t.test("metadata from the source is checked against the KOS: another patient's series is refused", async (t) => {
  // the source's PACS now files the instances under another patient: its metadata says so
  const ct = makeCtStudy(12);
  const files = await relabelStudy(ct.files.slice(0, 12), 'progressive-other');
  const pub = await net.publish(files, { accession: 'PROG-OTHER' });
  const seriesUid = pub.series[0].seriesUid;
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  // the KOS names the instances; the PACS re-labels the patient afterwards (a merge at the source)
  const dir = mkdtempSync(join(tmpdir(), 'progressive-merge-'));
  for (const [i, f] of files.entries()) {
    const [hit] = await (await fetch(`${net.orthancA.url}/tools/lookup`, { method: 'POST', body: readInfo(f).sopInstanceUid })).json() as { ID: string }[];
    await (await fetch(`${net.orthancA.url}/instances/${hit.ID}`, { method: 'DELETE' })).arrayBuffer();
    const p = join(dir, `${i}.dcm`);
    writeFileSync(p, f);
    execFileSync('dcmodify', ['-nb', '-q', '-m', '(0010,0020)=IPP-AUTRE', p]);
    await net.orthancA.upload([readFileSync(p)]);
  }
  net.sourcePacsRelay!.throttle(50_000);
  try {
    const r = await request(`${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}/series/${seriesUid}/metadata`, { dispatcher: agent, headers: { cookie, accept: 'application/dicom+json' } });
    t.equal(r.statusCode, 409, 'identity mismatch: refused');
    t.match((await r.body.json() as { detail: string }).detail, /Incohérence d'identité/);
  } finally {
    net.sourcePacsRelay!.throttle(undefined);
  }
});
