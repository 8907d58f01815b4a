// PACS adapters on the ANS reference CT (~1,300 JPEG-LS slices): the DIMSE adapter (C-GET, and
// C-MOVE to the box's own C-STORE SCP) against the DICOMweb adapter, same Orthanc, same run,
// interleaved, medians. Each retrieve reads every part body to the end, as the peer API does.
// Ratio = DICOMweb time / DIMSE time (1.0 = parity); first instance = request → first part's end.
import type { Readable } from 'node:stream';
import { startOrthanc, type Orthanc } from '../test/helpers/orthanc.js';
import { freePort } from '../test/helpers/ports.js';
import { createPacs } from '../gateway/src/pacs/index.js';
import type { Pacs } from '../gateway/src/pacs/pacs.js';
import { median } from './consumer-client.js';
import type { ReferenceCt } from '../sandbox/demo-data/reference-ct.js';

export interface AdapterTiming { ms: number; firstInstanceMs: number; bytes: number; instances: number }

async function drain(body: Readable): Promise<number> {
  let n = 0;
  for await (const c of body) n += (c as Buffer).length;
  return n;
}

/** Retrieves one series through an adapter, reading every part. */
export async function timedRetrieve(pacs: Pacs, study: string, series: string): Promise<AdapterTiming> {
  const t0 = performance.now();
  let first = 0, bytes = 0, instances = 0;
  for await (const part of pacs.retrieve({ study, series }, { transferSyntaxes: ['*'] })) {
    bytes += await drain(part.body);
    if (!instances++) first = performance.now() - t0;
  }
  return { ms: performance.now() - t0, firstInstanceMs: first, bytes, instances };
}

/** Uploads the reference CT in batches (Orthanc's REST upload, one file a request). */
export async function uploadCt(orthanc: Orthanc, ct: ReferenceCt): Promise<void> {
  for (let i = 0; i < ct.files.length; i += 50) await orthanc.upload(ct.files.slice(i, i + 50));
}

export async function measureAdapters(ct: ReferenceCt, runs: number): Promise<Record<string, number>> {
  const scpPort = await freePort();
  const orthanc = await startOrthanc({ gdcm: false, modalities: { BOX: { aet: 'DRIMBOX', host: '127.0.0.1', port: scpPort } } });
  const adapters: Pacs[] = [];
  try {
    await uploadCt(orthanc, ct);
    const web = await createPacs({ kind: 'dicomweb', url: orthanc.dicomWebUrl, timeoutMs: 60_000 });
    const cget = await createPacs({ kind: 'dimse', host: '127.0.0.1', port: orthanc.dicomPort, calledAet: orthanc.aet, callingAet: 'DRIMBOX', retrieve: 'c-get', timeoutMs: 60_000 });
    const cmove = await createPacs({ kind: 'dimse', host: '127.0.0.1', port: orthanc.dicomPort, calledAet: orthanc.aet, callingAet: 'DRIMBOX', retrieve: 'c-move', storeScp: { port: scpPort }, timeoutMs: 60_000 });
    adapters.push(web, cget, cmove);
    const t: Record<'web' | 'cget' | 'cmove', AdapterTiming[]> = { web: [], cget: [], cmove: [] };
    const get = (p: Pacs) => timedRetrieve(p, ct.studyInstanceUid, ct.seriesInstanceUid);
    for (const p of adapters) await get(p); // warm-up: associations, JIT, Orthanc's cache
    for (let i = 0; i < runs; i++) {
      t.web.push(await get(web));
      t.cget.push(await get(cget));
      t.cmove.push(await get(cmove));
    }
    for (const [k, xs] of Object.entries(t)) {
      if (xs.some((x) => x.instances !== ct.files.length)) throw new Error(`${k}: ${xs.map((x) => x.instances)} instances, expected ${ct.files.length}`);
    }
    const m = (xs: AdapterTiming[], f: (x: AdapterTiming) => number) => median(xs.map(f));
    return {
      ct_instances: ct.files.length,
      ct_mb: Math.round(t.web[0].bytes / 1e6),
      dicomweb_adapter_ms: Math.round(m(t.web, (x) => x.ms)),
      dimse_cget_ms: Math.round(m(t.cget, (x) => x.ms)),
      dimse_cmove_ms: Math.round(m(t.cmove, (x) => x.ms)),
      dimse_vs_dicomweb: +(m(t.web, (x) => x.ms) / m(t.cget, (x) => x.ms)).toFixed(2),
      dimse_cmove_vs_dicomweb: +(m(t.web, (x) => x.ms) / m(t.cmove, (x) => x.ms)).toFixed(2),
      dimse_first_instance_ms: Math.round(m(t.cget, (x) => x.firstInstanceMs)),
      dimse_cmove_first_instance_ms: Math.round(m(t.cmove, (x) => x.firstInstanceMs)),
      dicomweb_first_instance_ms: Math.round(m(t.web, (x) => x.firstInstanceMs)),
    };
  } finally {
    for (const p of adapters) await p.close().catch(() => undefined);
    await orthanc.stop();
  }
}
