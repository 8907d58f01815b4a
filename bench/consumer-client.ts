// The consumer benchmark's viewer: a worker thread with its own event loop, so that the client's
// reading (TLS decryption, multipart) does not run on the boxes' thread — a real viewer is another
// machine. Measures both the direct Orthanc retrieve and the retrieve through the boxes the same way.
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export interface TimedGet { ms: number; firstByteMs: number; bytes: number }
export interface GetMessage { id: number; url: string; headers: Record<string, string>; tls: boolean }

const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

/** GETs a multipart study (any transfer syntax) and reads it to the end; also used by source-proxy.ts. */
export async function timedGet(url: string, headers: Record<string, string> = {}, dispatcher?: Dispatcher): Promise<TimedGet> {
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

if (parentPort) {
  const port = parentPort;
  // the parent's test CA (a worker would otherwise make its own PKI)
  const agent = new Agent({ connect: { ca: readFileSync((workerData as { caFile: string }).caFile), servername: 'localhost' } });
  port.on('message', (m: GetMessage | 'close') => {
    if (m === 'close') { void agent.close().then(() => port.close()); return; }
    timedGet(m.url, m.headers, m.tls ? agent : undefined).then(
      (r) => port.postMessage({ id: m.id, ...r }),
      (e: Error) => port.postMessage({ id: m.id, error: `GET ${m.url}: ${e.message}` }),
    );
  });
  port.postMessage('ready');
}
