// Screening benchmark on the sandbox network with two source boxes (A and C, one Orthanc behind both):
// BENCH_CASES (default 60) 4-view MG exams, each with a prior two years before, half on each box; a
// batch prefetched by box B.
// - prefetch_vs_relay: the batch's aggregate prefetch throughput (bytes landed ÷ creation-to-ready
//   time) ÷ the throughput, in the same run, of the same studies retrieved (WADO-RS) from the same
//   Orthanc through a chain of two TLS byte relays (the two hops a prefetch makes: box B → box A →
//   PACS), as many at once as the engine fetches cases: how close the prefetch gets to bare relays.
//   tls_floor_mb_s: the same bytes from memory over one HTTPS connection (what TLS alone allows).
// - verdict_ms: a verdict POST → stored answer, median and p95 over the cases.
// - next_case_ms: the reading worklist in Chromium, CPU rendering: keystroke → every current and prior
//   view drawn, the next case cached, median and p95 over 20 case changes (bench/screening-viewer.ts).
// BENCH_MG_SIZE: small (832×640, default) or full (3328×2560, ~68 MB an exam).
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { startConsumerNetwork } from '../test/helpers/network.js';
import { mtlsAgent } from '../test/helpers/box.js';
import { testPki } from '../test/helpers/pki.js';
import { publishScreeningExams, rowOf, screeningClient } from '../test/helpers/screening.js';
import { waitFor } from '../test/helpers/wait.js';
import { serverTls } from '../gateway/src/http/tls.js';
import { SESSION_COOKIE } from '../gateway/src/trust/sessions.js';
import { measureNextCase } from './screening-viewer.js';
import { relayChain } from './relay-chain.js';

const CASES = Number(process.env.BENCH_CASES ?? 60);
/** the engine's case concurrency (overall, per source box); the product's defaults when unset */
const CONCURRENCY = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
const SIZE: [number, number] = process.env.BENCH_MG_SIZE === 'full' ? [3328, 2560] : [832, 640];

export interface Quantiles { median: number; p95: number }

export const quantiles = (xs: number[]): Quantiles => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? 0;
  return { median: +at(0.5).toFixed(1), p95: +at(0.95).toFixed(1) };
};

/** The bench's one JSON line: every figure in one place (next_case_ms comes from the viewer's bench). */
export function screeningResult(m: { cases: number; mgSize: string; bytes: number; prefetchMs: number; relayMbps: number; tlsFloorMbps: number; verdict: Quantiles; nextCase?: Quantiles | null }) {
  const prefetchMbps = m.bytes / 1e6 / (m.prefetchMs / 1000);
  return {
    bench: 'screening',
    cases: m.cases,
    exams: m.cases * 2,
    mg_size: m.mgSize,
    prefetched_mb: Math.round(m.bytes / 1e6),
    prefetch_s: +(m.prefetchMs / 1000).toFixed(1),
    prefetch_mb_s: +prefetchMbps.toFixed(1),
    relay_chain_mb_s: +m.relayMbps.toFixed(1),
    tls_floor_mb_s: +m.tlsFloorMbps.toFixed(1),
    prefetch_vs_relay: +(prefetchMbps / m.relayMbps).toFixed(2),
    verdict_ms: m.verdict,
    next_case_ms: m.nextCase ?? null,
  };
}

/**
 * MB/s of the studies retrieved through two TLS byte relays in front of the PACS, `concurrency` at a
 * time (each retrieve read to its end).
 */
async function relayChainMbps(dicomWebUrl: string, studies: string[], concurrency: number): Promise<number> {
  const chain = await relayChain(dicomWebUrl);
  const pki = await testPki();
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' }, connections: concurrency });
  try {
    let bytes = 0;
    const queue = [...studies];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      for (let uid = queue.shift(); uid; uid = queue.shift()) {
        const r = await request(`${chain.url}/studies/${uid}`, { dispatcher: agent, headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
        if (r.statusCode !== 200) throw new Error(`relay chain: ${r.statusCode} for a study`);
        for await (const c of r.body) bytes += (c as Buffer).length;
      }
    }));
    return bytes / 1e6 / ((performance.now() - t0) / 1000);
  } finally {
    await agent.close();
    chain.close();
  }
}

/** MB/s of `bytes` from memory over one HTTPS connection on loopback (1 MiB writes, as the boxes write). */
async function tlsFloor(bytes: number): Promise<number> {
  const pki = await testPki();
  const chunk = Buffer.alloc(1 << 20, 7);
  const srv = createServer({ cert: readFileSync(pki.boxes['box-b'].chain), key: readFileSync(pki.boxes['box-b'].key), ...serverTls }, (_q, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { res.once('drain', pump); return; }
      }
      res.end();
    };
    pump();
  }).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' } });
  try {
    const t0 = performance.now();
    const r = await request(`https://localhost:${(srv.address() as { port: number }).port}/`, { dispatcher: agent });
    let got = 0;
    for await (const c of r.body) got += (c as Buffer).length;
    if (got !== bytes) throw new Error(`relay: ${got} of ${bytes} bytes`);
    return bytes / 1e6 / ((performance.now() - t0) / 1000);
  } finally {
    await agent.close();
    srv.close();
  }
}

export async function run() {
  const net = await startConsumerNetwork({ secondSource: true, consumerOrthanc: false, cacheMaxBytes: 64 * 1024 ** 3, consumerConfig: { screening: { examBytesEstimate: 1024 * 1024, ...(CONCURRENCY ? { concurrency: CONCURRENCY, perSourceConcurrency: Math.ceil(CONCURRENCY / 2) } : {}) } } });
  const agent = await mtlsAgent();
  try {
    const patients = await publishScreeningExams(net, CASES, { seed: 'bench', withPrior: () => true, size: SIZE });
    const { cookie } = await net.login();
    const api = screeningClient(net, agent, cookie);
    const t0 = performance.now();
    const r = await api.post('/api/screening/batches', { name: 'bench', rows: patients.map(rowOf) });
    if (r.status !== 201) throw new Error(`batch refused: ${r.status} ${r.text}`);
    const done = await waitFor(async () => { const b = await api.get(`/api/screening/batches/${r.json.id}`); return b.json.state === 'ready' && b.json; }, 3_600_000, 'batch ready', 50);
    const prefetchMs = performance.now() - t0;
    if (done.counts.ready !== CASES) throw new Error(`${done.counts.failed} case(s) failed: ${done.cases.find((c: { error?: string }) => c.error)?.error}`);
    const studies = patients.flatMap((p) => [p.current.studyUid, ...(p.prior ? [p.prior.studyUid] : [])]);
    const relayMbps = await relayChainMbps(net.orthancA.dicomWebUrl, studies, net.boxB.config.screening.concurrency);
    const tlsFloorMbps = await tlsFloor(done.bytes.done);
    const next = await measureNextCase({ userUrl: net.boxB.userUrl, sessionId: cookie.slice(SESSION_COOKIE.length + 1), batchId: done.id, cases: Math.min(20, CASES - 1) });
    const verdict: number[] = [];
    for (const c of done.cases) {
      const v0 = performance.now();
      const x = await api.post(`/api/screening/batches/${done.id}/cases/${c.id}/verdict`, { requestId: randomUUID(), quality: 'adequate', result: 'normal', timeSpentMs: 1000 });
      if (x.status !== 201) throw new Error(`verdict: ${x.status} ${x.text}`);
      verdict.push(performance.now() - v0);
    }
    return screeningResult({ cases: CASES, mgSize: `${SIZE[0]}x${SIZE[1]}`, bytes: done.bytes.done, prefetchMs, relayMbps, tlsFloorMbps, verdict: quantiles(verdict), nextCase: { median: next.median, p95: next.p95 } });
  } finally {
    await agent.close();
    await net.close();
  }
}
