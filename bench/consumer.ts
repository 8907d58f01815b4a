// Consumer benchmark on the two-box sandbox network (each box with its own Orthanc): a 4-view
// full-field MG study and the ANS reference CT (many ~230 KB JPEG-LS slices) retrieved (1) from
// Orthanc A directly, (2) through box B on a cold cache (box B → mTLS → box A → Orthanc A, stored into
// the cache while streamed to the viewer), (3) from box B's cache, (4) through a chain of two TLS byte
// relays in front of Orthanc A (viewer → TLS → relay → TLS → relay → Orthanc A, in this process like
// the boxes): the ceiling of any two-hop proxy here. Interleaved runs, medians.
// first_fetch_vs_relay_chain = chain / first fetch; cache_hit_vs_floor = HTTPS floor / cache hit (the
// same bytes from memory over HTTPS); cache_hit_speedup = direct / cache hit; first_fetch_time_ratio =
// first fetch / direct; first_byte_extra_ms = first byte through both boxes − first byte direct.
// Cache hits: three per run (the first right after the fill), the median of all of them.
// The viewer (both for direct and through the boxes) runs in a worker thread, as a real viewer is not
// in the box's process; BENCH_CLIENT=inline runs it on the boxes' thread instead (the older setup).
// tls_only_ms: the same bytes from memory over HTTPS vs plain HTTP in this process (what TLS costs).
// Smaller run: BENCH_STUDIES=mg (or ct), BENCH_CT_SLICES (1300), BENCH_CT_DIR caches the CT.
import { Worker } from 'node:worker_threads';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { startConsumerNetwork, callForm, openSession as openViewerSession, type ConsumerNetwork } from '../test/helpers/network.js';
import { mtlsAgent } from '../test/helpers/box.js';
import { testPki } from '../test/helpers/pki.js';
import { makeMgStudy } from '../sandbox/demo-data/mg-study.js';
import { makeReferenceCt } from '../sandbox/demo-data/reference-ct.js';
import { median, timedGet, type TimedGet } from './consumer-client.js';
import { serverTls } from '../gateway/src/http/tls.js';
import { relayChain } from './relay-chain.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const INLINE = process.env.BENCH_CLIENT === 'inline';
const HITS_PER_RUN = 3;
const STUDIES = (process.env.BENCH_STUDIES ?? 'mg,ct').split(',');
const CT_SLICES = Number(process.env.BENCH_CT_SLICES ?? 1300);
const CT_DIR = process.env.BENCH_CT_DIR ?? join(tmpdir(), 'drimbox-reference-ct');

interface Client { get(url: string, headers: Record<string, string>, tls: boolean): Promise<TimedGet>; close(): Promise<void> }

async function workerClient(): Promise<Client> {
  // the TypeScript loader is not inherited by workers: the worker registers it, then loads the client
  const entry = new URL('./consumer-client.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const w = new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, { eval: true, workerData: { caFile: (await testPki()).ca.cert } });
  await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
  let seq = 0;
  const waiting = new Map<number, { res: (r: TimedGet) => void; rej: (e: Error) => void }>();
  w.on('message', (m: { id: number; error?: string } & TimedGet) => {
    const p = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error) p?.rej(new Error(m.error)); else p?.res(m);
  });
  return {
    get: (url, headers, tls) => new Promise((res, rej) => { const id = ++seq; waiting.set(id, { res, rej }); w.postMessage({ id, url, headers, tls }); }),
    close: async () => { w.postMessage('close'); await new Promise((r) => w.once('exit', r)); },
  };
}

async function inlineClient(agent: Dispatcher): Promise<Client> {
  return { get: (url, headers, tls) => timedGet(url, headers, tls ? agent : undefined), close: async () => undefined };
}

/** The TLS floor: the study's bytes from memory, HTTPS vs plain HTTP, same process, same client. */
async function tlsCost(client: Client, bytes: number): Promise<{ http: number; https: number }> {
  const pki = await testPki();
  const data = Buffer.alloc(bytes, 7);
  // written in 1 MiB chunks as the boxes write (one 68 MB write costs TLS twice as much)
  const handler = (_q: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
    let at = 0;
    const pump = () => {
      while (at < data.length) {
        const chunk = data.subarray(at, at += 1 << 20);
        if (!res.write(chunk)) { res.once('drain', pump); return; }
      }
      res.end();
    };
    pump();
  };
  const h = createHttp(handler).listen(0, '127.0.0.1');
  const s = createHttps({ cert: readFileSync(pki.boxes['box-b'].chain), key: readFileSync(pki.boxes['box-b'].key), ...serverTls }, handler).listen(0, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 50));
  const port = (x: typeof h) => (x.address() as { port: number }).port;
  const hs: number[] = [], ss: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      hs.push((await client.get(`http://127.0.0.1:${port(h)}/`, {}, false)).ms);
      ss.push((await client.get(`https://localhost:${port(s)}/`, {}, true)).ms);
    }
  } finally { h.close(); s.close(); }
  return { http: median(hs), https: median(ss) };
}


/** One study through the network: direct, first fetch, cache hits, the relay chain; fields prefixed. */
async function measureStudy(net: ConsumerNetwork, client: Client, agent: Dispatcher, cookie: string, files: Buffer[], prefix: string, chainUrl: string): Promise<Record<string, unknown> & { bytes: number; hit: number }> {
  const pub = await net.publish(files, { accession: `BENCH-${prefix || 'MG'}` });
  // the contextual call as the RIS makes it (trusted origin), then the viewer session it redirects to
  const openSession = () => openViewerSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const direct = `${net.orthancA.dicomWebUrl}/studies/${pub.studyUid}`;
  const chain = `${chainUrl}/studies/${pub.studyUid}`;
  const viaBox = (id: string) => `${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`;
  // warm-up: connections, TLS sessions, JIT
  let id = await openSession();
  await client.get(direct, {}, false);
  await client.get(chain, {}, true);
  await client.get(viaBox(id), { cookie }, true);
  const d: number[] = [], dFirst: number[] = [], cold: number[] = [], coldFirst: number[] = [], hit: number[] = [], ch: number[] = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const x = await client.get(direct, {}, false);
    d.push(x.ms); dFirst.push(x.firstByteMs); bytes = x.bytes;
    ch.push((await client.get(chain, {}, true)).ms);
    await net.consumer.cache.clear();
    id = await openSession();
    const c = await client.get(viaBox(id), { cookie }, true);
    // same instances; only the multipart framing (boundaries) differs
    if (Math.abs(c.bytes - x.bytes) > 4096 + files.length * 64) throw new Error(`through the boxes ${c.bytes} bytes, direct ${x.bytes}`);
    cold.push(c.ms); coldFirst.push(c.firstByteMs);
    // a cache hit is a later visit: several per run, the first one right after the fill
    for (let h = 0; h < HITS_PER_RUN; h++) hit.push((await client.get(viaBox(id), { cookie }, true)).ms);
  }
  return {
    bytes,
    hit: median(hit),
    [`${prefix}study_mb`]: Math.round(bytes / 1e6),
    [`${prefix}instances`]: files.length,
    [`${prefix}direct_ms`]: Math.round(median(d)),
    [`${prefix}relay_chain_ms`]: Math.round(median(ch)),
    [`${prefix}first_fetch_ms`]: Math.round(median(cold)),
    [`${prefix}cache_hit_ms`]: Math.round(median(hit)),
    [`${prefix}first_fetch_vs_relay_chain`]: +(median(ch) / median(cold)).toFixed(2),
    [`${prefix}cache_hit_speedup`]: +(median(d) / median(hit)).toFixed(2),
    [`${prefix}first_fetch_time_ratio`]: +(median(cold) / median(d)).toFixed(2),
    [`${prefix}first_byte_direct_ms`]: +median(dFirst).toFixed(1),
    [`${prefix}first_byte_boxes_ms`]: +median(coldFirst).toFixed(1),
    [`${prefix}first_byte_extra_ms`]: +(median(coldFirst) - median(dFirst)).toFixed(1),
  };
}

export async function run() {
  const net = await startConsumerNetwork({ consumerOrthanc: false });
  const agent = await mtlsAgent();
  const client = INLINE ? await inlineClient(agent) : await workerClient();
  const chain = await relayChain(net.orthancA.dicomWebUrl);
  try {
    const { cookie } = await net.login();
    const results: Record<string, unknown> = { bench: 'consumer', runs: RUNS, cache_hits_measured: RUNS * HITS_PER_RUN, client: INLINE ? 'inline' : 'worker' };
    if (STUDIES.includes('mg')) {
      const mg = makeMgStudy({ size: 'full', seed: 7, patientId: 'IPP-0042' });
      const { bytes, hit, ...fields } = await measureStudy(net, client, agent, cookie, mg.files.map((f) => f.part10), '', chain.url);
      Object.assign(results, fields);
      const tls = await tlsCost(client, bytes);
      results.tls_only_ms = { http: Math.round(tls.http), https: Math.round(tls.https) };
      results.cache_hit_vs_floor = +(tls.https / hit).toFixed(2);
    }
    if (STUDIES.includes('ct')) {
      const ct = await makeReferenceCt(CT_DIR, { slices: CT_SLICES, patientId: 'IPP-0042', patientName: 'DEPISTAGE^ANNE' });
      const { bytes, hit, ...fields } = await measureStudy(net, client, agent, cookie, ct.files.map((f) => readFileSync(f)), 'ct_', chain.url);
      Object.assign(results, fields);
      const tls = await tlsCost(client, bytes);
      results.ct_tls_only_ms = { http: Math.round(tls.http), https: Math.round(tls.https) };
      results.ct_cache_hit_vs_floor = +(tls.https / hit).toFixed(2);
    }
    return results;
  } finally {
    chain.close();
    await client.close();
    await agent.close();
    await net.close();
  }
}
