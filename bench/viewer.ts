// Viewer benchmark: the reference CT, uncached, through both boxes (box B → mTLS → box A → Orthanc A),
// in Debian's Chromium on the CPU rendering path (no WebGL). Each run drops the series from box B's
// cache, makes the contextual call (as the RIS does), then opens the viewer at the address it
// redirects to. ct_first_slice_ms = that redirect → the first slice drawn; ct_scrollable_ms = the
// redirect → the whole series in box B's cache and in the viewer's stack (every slice can be scrolled
// to). Medians of BENCH_RUNS (5). Smaller run: BENCH_CT_SLICES (1300).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startConsumerNetwork, callForm, openSession } from '../test/helpers/network.js';
import { mtlsAgent } from '../test/helpers/box.js';
import { CHROMIUM, chromiumArgs, requireChromium } from '../test/e2e/helpers/chromium.js';
import { ensureViewerBuilt } from '../test/e2e/helpers/viewer-build.js';
import { makeReferenceCt } from '../sandbox/demo-data/reference-ct.js';
import { median } from './consumer-client.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CT_SLICES = Number(process.env.BENCH_CT_SLICES ?? 1300);
const CT_DIR = process.env.BENCH_CT_DIR ?? join(tmpdir(), 'drimbox-reference-ct');

export async function run() {
  requireChromium();
  const buildMs = ensureViewerBuilt(process.cwd());
  const ct = await makeReferenceCt(CT_DIR, { slices: CT_SLICES, patientId: 'IPP-0042', patientName: 'DEPISTAGE^ANNE' });
  const net = await startConsumerNetwork({ consumerOrthanc: false });
  const agent = await mtlsAgent();
  const userDataDir = mkdtempSync(join(tmpdir(), 'bench-viewer-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: chromiumArgs('cpu'), ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 },
  });
  try {
    const pub = await net.publish(ct.files.map((f) => readFileSync(f)), { accession: 'BENCH-CT' });
    const { cookie } = await net.login();
    const [name, ...value] = cookie.split(';')[0].split('=');
    await context.addCookies([{ name, value: value.join('='), url: net.boxB.userUrl }]);
    const page = await context.newPage();
    const series = { source: net.boxA.config.box.retrieveLocationUid, kosUid: pub.kosUid, seriesUid: ct.seriesInstanceUid };
    const first: number[] = [], scrollable: number[] = [];
    let inPage: Record<string, number> = {};
    for (let i = 0; i < RUNS; i++) {
      await page.goto('about:blank');
      // uncached: the series is dropped (once idle: the previous run's page is gone)
      for (let k = 0; k < 200 && (await net.consumer.cache.state(series)) !== 'absent'; k++) {
        await net.consumer.cache.clear();
        await new Promise((r) => setTimeout(r, 50));
      }
      if ((await net.consumer.cache.state(series)) !== 'absent') throw new Error('the series stayed in the cache');
      const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
      const t0 = performance.now();
      await page.goto(`${net.boxB.userUrl}/viewer/?session=${encodeURIComponent(id)}&render=cpu`, { waitUntil: 'commit' });
      await page.waitForFunction(() => (window as any).__viewer?.cells().some((c: any) => c.rendered), null, { timeout: 120_000, polling: 'raf' });
      first.push(performance.now() - t0);
      const n = ct.files.length;
      await page.waitForFunction((n) => (window as any).__viewer?.cells().some((c: any) => c.count === n), n, { timeout: 600_000, polling: 100 });
      for (let k = 0; (await net.consumer.cache.state(series)) !== 'complete'; k++) {
        if (k > 12_000) throw new Error('the series never completed in the cache');
        await new Promise((r) => setTimeout(r, 50));
      }
      scrollable.push(performance.now() - t0);
      if ((await page.evaluate(() => (window as any).__viewer.renderPath)) !== 'cpu') throw new Error('the viewer did not take the CPU rendering path');
      // where the page's time went (ms from its navigation start): what the first slice waited for
      // (a string: tsx would wrap named functions in a helper that does not exist in the page)
      inPage = await page.evaluate(`(() => {
        const res = performance.getEntriesByType('resource');
        const end = (re, last) => { const m = res.filter((r) => re.test(r.name)).map((r) => r.responseEnd); return m.length ? Math.round(last ? Math.max(...m) : Math.min(...m)) : -1; };
        return {
          ...Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, Math.round(m.startTime)])),
          session: end(/\\/api\\/sessions\\/[^/]+$/), seriesQido: end(/\\/series$/), firstMetadata: end(/\\/metadata$/), lastMetadata: end(/\\/metadata$/, true),
          firstFrame: end(/\\/frames\\//), lastFrame: end(/\\/frames\\//, true), firstInstance: end(/\\/instances\\/[^/]+$/),
        };
      })()`) as Record<string, number>;
    }
    return {
      bench: 'viewer', runs: RUNS, render: 'cpu', ct_instances: ct.files.length, ...(buildMs ? { viewer_build_ms: buildMs } : {}),
      ct_first_slice_ms: Math.round(median(first)),
      ct_scrollable_ms: Math.round(median(scrollable)),
      ct_first_slice_runs_ms: first.map(Math.round),
      ct_last_run_in_page_ms: inPage,
    };
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
    await agent.close();
    await net.close();
  }
}
