// End-to-end: the viewer is progressive. A CT uncached, through both boxes, with a slow source PACS
// (box A reads Orthanc A through a throttled relay), in Chromium on the CPU rendering path: the first
// slice is drawn while box B's cache still lacks most of the series, a slice scrolled to before it
// landed is drawn once it comes, and when the series has landed every slice is drawn in turn.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startConsumerNetwork, callForm, openSession, relabelStudy, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { CHROMIUM, chromiumArgs, requireChromium } from './helpers/chromium.js';
import { ensureViewerBuilt } from './helpers/viewer-build.js';
import { makeCtStudy } from './helpers/ct-series.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SLICES = 40;
let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;
let context: BrowserContext;
let userDataDir: string;

type Cell = { rendered: boolean; drawn: boolean; count?: number; imageIndex?: number };
const cell0 = (page: Page) => page.evaluate(() => (window as unknown as { __viewer: { cells(): Cell[] } }).__viewer?.cells()[0]) as Promise<Cell | undefined>;

t.before(async () => {
  requireChromium();
  ensureViewerBuilt(repo);
  net = await startConsumerNetwork({ consumerOrthanc: false, sourcePacsRelay: true });
  agent = await mtlsAgent();
  userDataDir = mkdtempSync(join(tmpdir(), 'viewer-progressive-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: chromiumArgs('cpu'), ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 },
  });
});
t.teardown(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await agent?.close();
  await net?.close();
});

t.test('the first CT slice is drawn before the series has landed; then every slice', async (t) => {
  const ct = makeCtStudy(SLICES);
  const pub = await net.publish(await relabelStudy(ct.files.slice(0, SLICES), 'viewer-progressive'), { accession: 'PROG-VIEW' });
  const seriesUid = pub.series[0].seriesUid;
  const key = { source: net.boxA.config.box.retrieveLocationUid, kosUid: pub.kosUid, seriesUid };
  const landed = async () => (await net.consumer.cache.store.instances({ study: pub.studyUid, series: seriesUid })).length;
  const { cookie } = await net.login();
  const [name, ...value] = cookie.split(';')[0].split('=');
  await context.addCookies([{ name, value: value.join('='), url: net.boxB.userUrl }]);
  const page = await context.newPage();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));

  // ≈ 32 KB a slice at 100 KB/s: the series takes over ten seconds to come through box A
  net.sourcePacsRelay!.throttle(100_000);
  const t0 = Date.now();
  await page.goto(`${net.boxB.userUrl}/viewer/?session=${encodeURIComponent(id)}&render=cpu`, { waitUntil: 'commit' });
  await page.waitForFunction(() => (window as any).__viewer?.cells().some((c: any) => c.rendered && c.drawn), null, { timeout: 60_000, polling: 'raf' });
  const firstMs = Date.now() - t0;
  const atFirst = await landed();
  t.not(await net.consumer.cache.state(key), 'complete', `the first slice was drawn after ${firstMs} ms, with ${atFirst}/${SLICES} instances in box B's cache`);
  t.ok(atFirst < SLICES / 2, `most of the series was still to come (${atFirst}/${SLICES})`);
  t.equal((await cell0(page))?.count, SLICES, 'the whole stack is laid out at once');

  // a slice not landed yet: scrolled to, it is drawn once it comes (no permanent blank)
  await page.locator('.cell[data-index="0"]').click();
  await page.keyboard.press('End');
  await page.waitForFunction(() => { const c = (window as any).__viewer.cells()[0]; return c.imageIndex === c.count - 1 && c.drawn; }, null, { timeout: 60_000, polling: 'raf' });
  t.pass(`the last slice, scrolled to with ${await landed()}/${SLICES} landed, is drawn`);

  net.sourcePacsRelay!.throttle(undefined);
  await waitFor(async () => (await net.consumer.cache.state(key)) === 'complete', 60_000, 'the series complete in the cache');
  t.equal(net.consumer.cache.fetches, 1, 'one upstream series fetch');
  // every slice drawn in turn, from the first to the last
  await page.keyboard.press('Home');
  const blank: number[] = [];
  for (let i = 0; i < SLICES; i++) {
    if (i > 0) await page.keyboard.press('ArrowDown');
    const ok = await page.waitForFunction((i) => { const c = (window as any).__viewer.cells()[0]; return c.imageIndex === i && c.drawn; }, i, { timeout: 10_000, polling: 'raf' }).then(() => true, () => false);
    if (!ok) blank.push(i);
  }
  t.same(blank, [], `every one of the ${SLICES} slices is drawn when scrolled to`);
  await page.close();
});
