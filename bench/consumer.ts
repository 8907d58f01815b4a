// Consumer benchmark on the two-box sandbox network (each box with its own Orthanc): a 4-view
// full-field MG study retrieved (1) from Orthanc A directly, (2) through box B on a cold cache (box B
// → mTLS → box A → Orthanc A, stored into the cache while streamed to the viewer), (3) from box B's
// cache. Interleaved runs, medians. cache_hit_speedup = direct / cache hit; first_fetch_time_ratio =
// first fetch / direct; first_byte_extra_ms = first byte through both boxes − first byte direct.
import { request, type Dispatcher } from 'undici';
import { startConsumerNetwork, callForm } from '../test/helpers/network.js';
import { mtlsAgent } from '../test/helpers/box.js';
import { makeMgStudy } from '../sandbox/demo-data/mg-study.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timedGet(url: string, headers: Record<string, string>, dispatcher?: Dispatcher): Promise<{ ms: number; firstByteMs: number; bytes: number }> {
  const t0 = performance.now();
  const r = await request(url, { headers: { accept: ACCEPT, ...headers }, dispatcher });
  if (r.statusCode !== 200) throw new Error(`${url}: HTTP ${r.statusCode} ${await r.body.text()}`);
  let bytes = 0;
  let firstByteMs = 0;
  for await (const c of r.body) {
    if (!bytes) firstByteMs = performance.now() - t0;
    bytes += (c as Buffer).length;
  }
  return { ms: performance.now() - t0, firstByteMs, bytes };
}

export async function run() {
  const net = await startConsumerNetwork({ consumerOrthanc: false });
  const agent = await mtlsAgent();
  try {
    const mg = await makeMgStudy({ size: 'full', seed: 7, patientId: 'IPP-0042' });
    const pub = await net.publish(mg.files.map((f) => f.part10), { accession: 'BENCH-MG' });
    const { cookie } = await net.login();
    const openSession = async () => {
      const r = await request(`${net.boxB.userUrl}/contextual-call`, {
        method: 'POST', dispatcher: agent,
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(callForm({ StudyInstanceUID: pub.studyUid })).toString(),
      });
      await r.body.dump();
      return new URL(String(r.headers.location), 'https://x').searchParams.get('session')!;
    };
    const direct = `${net.orthancA.dicomWebUrl}/studies/${pub.studyUid}`;
    const viaBox = (id: string) => `${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`;
    // warm-up: connections, TLS sessions, JIT
    let id = await openSession();
    await timedGet(direct, {});
    await timedGet(viaBox(id), { cookie }, agent);
    const d: number[] = [], dFirst: number[] = [], cold: number[] = [], coldFirst: number[] = [], hit: number[] = [];
    let bytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const x = await timedGet(direct, {});
      d.push(x.ms); dFirst.push(x.firstByteMs); bytes = x.bytes;
      net.consumer.cache.clear();
      id = await openSession();
      const c = await timedGet(viaBox(id), { cookie }, agent);
      // same instances; only the multipart framing (boundaries) differs
      if (Math.abs(c.bytes - x.bytes) > 4096) throw new Error(`through the boxes ${c.bytes} bytes, direct ${x.bytes}`);
      cold.push(c.ms); coldFirst.push(c.firstByteMs);
      hit.push((await timedGet(viaBox(id), { cookie }, agent)).ms);
    }
    return {
      bench: 'consumer',
      runs: RUNS,
      study_mb: Math.round(bytes / 1e6),
      direct_ms: Math.round(median(d)),
      first_fetch_ms: Math.round(median(cold)),
      cache_hit_ms: Math.round(median(hit)),
      cache_hit_speedup: +(median(d) / median(hit)).toFixed(2),
      first_fetch_time_ratio: +(median(cold) / median(d)).toFixed(2),
      first_byte_direct_ms: +median(dFirst).toFixed(1),
      first_byte_boxes_ms: +median(coldFirst).toFixed(1),
      first_byte_extra_ms: +(median(coldFirst) - median(dFirst)).toFixed(1),
    };
  } finally {
    await agent.close();
    await net.close();
  }
}
