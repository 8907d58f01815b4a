// End-to-end through the real demo network (registry, PSC and DMP simulators, box-a source, box-b
// consumer) in Debian's Chromium: the launcher's contextual call → PSC login → the viewer, the MG
// study hung in four views (read from the pixels' orientation marks), the report, window/level, a
// withdrawn study, the MR study scrolled; timings uncached and cached. Runs once with WebGL2
// (SwiftShader) and once on the CPU path (--disable-3d-apis), each on a fresh network (empty cache).
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { chromium, type Page } from 'playwright-core';
import { startDemoNetwork, type DemoNetwork } from '../../sandbox/network.js';
import { DEMO_PATIENTS } from '../../sandbox/demo-data/catalogue.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { sendMllp } from '../../sandbox/mllp-send.js';
import { screenshotGray, stats, diff, markRuns, cellShot, settle } from './helpers/pixels.js';
import { ensureViewerBuilt } from './helpers/viewer-build.js';
import { CHROMIUM, chromiumArgs, requireChromium } from './helpers/chromium.js';
import { cells, toolsReady } from './helpers/viewer-page.js';
import { sqliteOf } from '../helpers/box.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = join(repo, 'docs', 'screenshots');
const CLINICIAN_RPPS = '10001234567';


let pkiDir: string;
let buildMs = 0;

t.before(() => {
  requireChromium();
  buildMs = ensureViewerBuilt(repo);
  pkiDir = mkdtempSync(join(tmpdir(), 'viewer-net-pki-'));
  mkdirSync(SHOTS, { recursive: true });
});
t.teardown(() => { if (pkiDir) rmSync(pkiDir, { recursive: true, force: true }); });

const anyRendered = () => (window as any).__viewer?.cells().some((c: any) => c.rendered);
const fourHung = () => document.body.dataset.hung === 'four' && (window as any).__viewer.cells().filter((c: any) => c.rendered).length === 4;

/** Clicks the launcher's contextual-call button for a patient; returns the submit time (epoch ms). */
async function contextualCall(page: Page, launcherUrl: string, patientLabel: string): Promise<number> {
  await page.goto(launcherUrl);
  const button = page.locator('section', { hasText: patientLabel }).locator('button[type="submit"]');
  const t0 = Date.now();
  await button.click({ noWaitAfter: true });
  return t0;
}

/** When each page asked for /viewer/?session=… (epoch ms): the consumer has opened the session. */
const viewerRequests = new WeakMap<Page, number[]>();
function recordViewerRequests(page: Page): void {
  const list: number[] = [];
  viewerRequests.set(page, list);
  page.on('request', (r) => { if (/\/viewer\/\?session=/.test(r.url())) list.push(Date.now()); });
}

interface Measure { inPage?: Record<string, number>; submitToViewerRequestMs: number; submitToFirstImageMs: number; submitToFourViewsMs?: number; viewerFirstImageMs?: number; viewerFourViewsMs?: number }

async function measureUntil(page: Page, t0: number, mg: boolean): Promise<Measure> {
  await page.waitForURL(/\/viewer\/\?session=/, { timeout: 30_000 });
  const viewerAt = viewerRequests.get(page)?.find((at) => at >= t0) ?? NaN;
  await page.waitForFunction(anyRendered, null, { timeout: 30_000, polling: 'raf' });
  const first = Date.now() - t0;
  let four: number | undefined;
  if (mg) {
    await page.waitForFunction(fourHung, null, { timeout: 30_000, polling: 'raf' });
    four = Date.now() - t0;
  }
  const v = await page.evaluate(() => (window as any).__viewer.timings) as Record<string, number>;
  // where the viewer page's time went (ms from its navigation start, Resource Timing)
  // (a string: tsx would wrap named functions in a helper that does not exist in the page)
  const inPage = await page.evaluate(`(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const mark = (name) => { const m = performance.getEntriesByName(name, 'mark')[0]; return m ? Math.round(m.startTime) : -1; };
    const end = (re, last) => { const m = res.filter((r) => re.test(r.name)).map((r) => r.responseEnd); return m.length ? Math.round(last ? Math.max(...m) : Math.min(...m)) : -1; };
    return {
      ...Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, Math.round(m.startTime)])),
      domContentLoaded: Math.round(nav.domContentLoadedEventEnd), session: end(/\\/api\\/sessions\\/[^/]+$/), seriesQido: end(/\\/series$/),
      lastMetadata: end(/\\/metadata$/, true), firstFrame: end(/\\/frames\\//), lastFrame: end(/\\/frames\\//, true),
    };
  })()`) as Record<string, number>;
  return { submitToViewerRequestMs: viewerAt - t0, submitToFirstImageMs: first, ...(four !== undefined ? { submitToFourViewsMs: four } : {}), viewerFirstImageMs: v.firstImageMs, ...(mg ? { viewerFourViewsMs: v.mgFourViewMs } : {}), inPage };
}

function median(runs: Measure[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(runs[0]).filter((x) => x !== 'inPage') as (keyof Measure)[]) {
    const v = runs.map((r) => r[k] as number).sort((a, b) => a - b);
    out[k] = v[Math.floor(v.length / 2)];
  }
  const mid = [...runs].sort((a, b) => a.submitToFirstImageMs - b.submitToFirstImageMs)[Math.floor(runs.length / 2)];
  return { ...out, runs: runs.length, inPageOfMedianRun: mid.inPage as never };
}

/** Withdraws a demo MG report as the RIS would (ORU^R01, ORC-1 CA over MLLP) and waits for box-a to finish. */
async function withdrawReport(net: DemoNetwork, study: { studyInstanceUid: string; description: string }, accession: string, date: string): Promise<void> {
  const p = DEMO_PATIENTS.anne;
  const input: ReportInput = {
    patient: { ins: p.ins, ipp: p.ipp, ippOid: p.ippOid, birthName: p.birthName, givenNames: p.givenNames, birthDate: p.birthDate, sex: p.sex, birthPlace: p.birthPlace },
    studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: accession, modality: 'MG', date, description: study.description }],
  };
  const a = net.manifest.boxes[0];
  const ack = await sendMllp(a.mllp!.host, a.mllp!.port, oruMessage(buildReportCda(input), input, { controlId: 'E2E-WITHDRAW-1', withdraw: true }));
  if (!/\rMSA\|AA\|/.test(ack)) throw new Error(`withdrawal refused by box-a: ${ack.replace(/\r/g, ' | ')}`);
  const agent = new Agent({ connect: { ca: readFileSync(a.ca) } });
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await request(`${a.userUrl}/admin/publications?pageSize=100`, { dispatcher: agent, headers: { authorization: `Bearer ${a.adminToken}` } });
      const { items } = await r.body.json() as { items: { kind: string; state: string; studies: string[]; error?: string }[] };
      const job = items.find((j) => j.kind === 'withdraw' && j.studies.includes(study.studyInstanceUid));
      if (job?.state === 'withdrawn') return;
      if (job?.state === 'failed' || Date.now() > deadline) throw new Error(`withdrawal not done at box-a: ${JSON.stringify(job)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await agent.close();
  }
}

/** What box-a's peer API says to box-b's certificate (without a PSC token: 401 when the peer is known). */
async function peerProbe(net: DemoNetwork): Promise<string> {
  const [a, b] = net.manifest.boxes;
  const agent = new Agent({ connect: { ca: readFileSync(b.ca), cert: readFileSync(b.cert), key: readFileSync(b.key) } });
  try {
    const r = await request(`${a.peerUrl}/dicom-web/studies`, { dispatcher: agent, headers: { accept: 'application/dicom+json' } });
    return `${r.statusCode} ${(await r.body.text()).slice(0, 200)}`;
  } finally {
    await agent.close();
  }
}

for (const mode of ['webgl', 'cpu'] as const) {
  t.test(`viewer through the demo network (${mode} rendering)`, async (t) => {
    const tStart = Date.now();
    const runDir = mkdtempSync(join(tmpdir(), 'viewer-net-run-'));
    const net = await startDemoNetwork({ runDir, pkiDir, logLevel: 'error' });
    t.teardown(async () => { await net.close(); rmSync(runDir, { recursive: true, force: true }); });
    const networkMs = Date.now() - tStart;
    const m = net.manifest;
    const launcherUrl = m.boxes[1].launcherUrl!;
    const [mgCurrent, mgPrior] = m.studies.filter((s) => s.modality === 'MG'); // catalogue order: current, prior
    const mr = m.studies.find((s) => s.modality === 'MR')!;

    const args = chromiumArgs(mode);
    const userDataDir = mkdtempSync(join(tmpdir(), 'viewer-net-chromium-'));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args, ignoreHTTPSErrors: true, viewport: { width: 1920, height: 1080 },
    });
    t.teardown(async () => { await context.close(); rmSync(userDataDir, { recursive: true, force: true }); });
    const page = context.pages()[0] ?? await context.newPage();
    recordViewerRequests(page);
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    let resumedAt = 0;
    let parkedUrl: string | undefined;
    page.on('request', (r) => { if (r.url().includes('/contextual-call/resume/')) { resumedAt = Date.now(); parkedUrl ??= r.url(); } });
    const timings: Record<string, unknown> = { event: 'viewer-network-timing', mode, networkStartMs: networkMs };

    await t.test('box-a accepts box-b as a peer once the demo network is up', async (t) => {
      const first = await peerProbe(net);
      // Regression (found by this test, fixed in sandbox/network.ts): box-a fetched the signed
      // allow-list when it started, before box-b had enrolled, and refreshed it only every 24 h.
      // Should it come back, the assertion fails and the refresh below lets the rest run.
      t.notMatch(first, /allow-list/, `box-a knows box-b right after startDemoNetwork (box-a said: ${first})`);
      if (/allow-list/.test(first)) {
        t.comment('workaround: box-a refreshes its allow-list now');
        t.ok(await net.boxes['box-a'].services.allowList!.refresh(), 'box-a downloaded a fresh allow-list');
        t.notMatch(await peerProbe(net), /allow-list/, 'after the refresh, box-a knows box-b');
      }
    });

    await t.test('MG: contextual call → PSC login → four views hung from the orientation marks, report, W/L', async (t) => {
      const t0 = await contextualCall(page, launcherUrl, 'DEPISTAGE ANNE');
      const reached = await page.waitForURL((u) => u.href.startsWith(m.psc.issuer), { timeout: 5_000 }).then(() => true, () => false);
      // Regression (found by this test, fixed in gateway/src/consumer/entry-routes.ts): the launcher's
      // CSP `form-action 'self'` — Chromium applies form-action to the redirects after the POST, so
      // the redirect to the PSC was blocked. Should it come back, the assertion fails and the parked
      // call is opened by hand below so the rest still runs.
      t.ok(reached, 'the launcher’s contextual call, before login, leads to the PSC login page');
      if (!reached) {
        // what the browser would have done without the CSP: a top-level GET of the parked call
        if (!parkedUrl) throw new Error('the contextual call was not parked: no /contextual-call/resume/ request');
        t.comment(`workaround: opening the parked call ${new URL(parkedUrl).pathname} as a top-level navigation`);
        await page.goto(parkedUrl, { waitUntil: 'commit' });
        await page.waitForURL((u) => u.href.startsWith(m.psc.issuer), { timeout: 15_000 });
      }
      t.match(await page.locator('h1').innerText(), /Pro Santé Connect/, 'the PSC login page');
      await page.click(`button[data-rpps="${CLINICIAN_RPPS}"]`);
      // the consent step (first login of this clinician for box-b), then back to box-b
      await page.waitForURL((u) => !u.href.startsWith(m.psc.issuer) || /\/interaction\//.test(u.pathname), { timeout: 15_000 });
      await page.waitForLoadState();
      if (page.url().startsWith(m.psc.issuer) && await page.locator('#confirm').count()) await page.click('#confirm');
      const mg = await measureUntil(page, t0, true);
      // the human login is not part of the measure: from the parked call's resumption (PSC callback done)
      timings.mgUncached = { afterLoginToViewerRequestMs: mg.submitToViewerRequestMs - (resumedAt - t0), afterLoginToFirstImageMs: mg.submitToFirstImageMs - (resumedAt - t0), afterLoginToFourViewsMs: mg.submitToFourViewsMs! - (resumedAt - t0), viewerFirstImageMs: mg.viewerFirstImageMs, viewerFourViewsMs: mg.viewerFourViewsMs, inPage: mg.inPage };
      t.equal(await page.evaluate(() => (window as any).__viewer.renderPath), mode, `rendering path is ${mode}`);

      const banner = await page.locator('#banner').innerText();
      for (const w of ['DEPISTAGE', 'ANNE', '12/03/1964', 'Marie Curie-Test']) t.match(banner, w, `banner shows ${w}`);
      t.equal(await page.locator('.study').count(), 2, 'both MG studies of the patient listed from the DMP');

      const hung = await cells(page);
      t.same(hung.map((c) => c.label), ['RCC', 'LCC', 'RMLO', 'LMLO'], 'RCC | LCC over RMLO | LMLO');
      t.same(hung.map((c) => c.laterality), ['R', 'L', 'R', 'L'], 'right breast on the viewer’s left');
      t.ok(hung.every((c) => c.studyUid === mgCurrent.studyInstanceUid), 'the most recent MG study is the one hung');

      // the report panel: the CDA's text, fetched through the consumer from the DMP
      await page.waitForFunction(() => { const el = document.querySelector('.report-text'); return el && /Examen normal/.test(el.textContent ?? ''); }, null, { timeout: 10_000 })
        .then(() => t.pass('report panel shows the CDA report text'))
        .catch(async () => t.fail(`report panel: ${await page.locator('#report').innerText().catch(() => '(none)')}`));

      await settle(page);
      if (mode === 'webgl') await page.screenshot({ path: join(SHOTS, 'network-mg.png') });

      await page.keyboard.press('o'); // overlays off: only pixels in the captures
      await settle(page);
      const widths: number[] = [];
      const shots = [];
      for (const c of hung) {
        const g = await cellShot(page, c.index);
        shots.push(g);
        t.ok(stats(g).variance > 100, `${c.label}: the viewport shows an image (variance ${stats(g).variance.toFixed(0)})`);
        const marks = markRuns(g);
        if (!marks) { t.fail(`${c.label}: no orientation mark found`); continue; }
        const expected = c.laterality === 'R' ? 1 : 2;
        t.equal(marks.runs.length, expected, `${c.label}: ${expected} mark block(s) → ${c.laterality === 'R' ? 'right' : 'left'} breast image`);
        const centre = (marks.runs[0].start + marks.runs[marks.runs.length - 1].end) / 2 / g.width;
        if (c.laterality === 'R') t.ok(centre > 0.5, `${c.label}: chest wall on the right edge, facing the centre (mark at ${(centre * 100).toFixed(0)} %)`);
        else t.ok(centre < 0.5, `${c.label}: chest wall on the left edge, facing the centre (mark at ${(centre * 100).toFixed(0)} %)`);
        widths.push(marks.runs[0].end - marks.runs[0].start);
      }
      t.ok(widths[0] > widths[2] * 1.5 && widths[1] > widths[3] * 1.5, `CC marks (wide) on top, MLO marks (narrow) below: ${widths.join(',')}`);

      // window/level: the automatic preset (3 on MG: default, the image's window, auto) changes the displayed values
      const box = (await page.locator('.cell[data-index="0"]').boundingBox())!;
      await page.mouse.click(box.x + 5, box.y + 5);
      const voi0 = (await cells(page))[0].voi!;
      await page.keyboard.press('3');
      await settle(page);
      const voi1 = (await cells(page))[0].voi!;
      t.not(`${voi1.lower}/${voi1.upper}`, `${voi0.lower}/${voi0.upper}`, `preset changes the VOI (${voi0.lower}..${voi0.upper} → ${voi1.lower}..${voi1.upper})`);
      const after = await screenshotGray(page, page.locator('.cell[data-index="0"] .cs'));
      t.ok(diff(shots[0], after) > 2, `window/level changes the displayed pixel values (mean diff ${diff(shots[0], after).toFixed(2)})`);
      await page.keyboard.press('r');
      await page.keyboard.press('o');
    });

    await t.test('MG again in a new contextual call: served from the consumer cache', async (t) => {
      // three new contextual calls, the median kept (the machine is shared: single runs are noisy)
      const boxA = sqliteOf(net.boxes['box-a']);
      const served = () => (boxA.prepare(`SELECT COUNT(*) AS n FROM audit WHERE direction = 'peer-in' AND study_uid = ? AND route NOT LIKE '%/series'`).get(mgCurrent.studyInstanceUid) as { n: number }).n;
      const servedBefore = served();
      t.ok(servedBefore > 0, `box-a served the study to box-b on the first call (${servedBefore} audited retrieves)`);
      const runs: Measure[] = [];
      for (let i = 0; i < 3; i++) runs.push(await measureUntil(page, await contextualCall(page, launcherUrl, 'DEPISTAGE ANNE'), true));
      timings.mgCached = median(runs);
      const hung = await cells(page);
      t.same(hung.map((c) => c.label), ['RCC', 'LCC', 'RMLO', 'LMLO'], 'four views hung again');
      const g = await cellShot(page, 0);
      t.ok(stats(g).variance > 100, 'the cached study renders');
      t.equal(served(), servedBefore, 'box-a served no images or metadata again (only access checks)');
    });

    await t.test('a study withdrawn by its source shows a clear message', async (t) => {
      // the prior, listed in the open session but never opened yet, is withdrawn by the RIS
      const other = mgPrior;
      await withdrawReport(net, other, 'A-MG-0001', '20221020');
      await page.click(`.study[data-study="${other.studyInstanceUid}"] .study-head`);
      await page.waitForSelector('#error:not([hidden])', { timeout: 15_000 });
      const msg = await page.locator('#error').innerText();
      t.match(msg, /retiré/i, `opening the withdrawn study says it was withdrawn (shown: "${msg}")`);
      // a new contextual call no longer lists it: the source deleted it from the DMP
      await contextualCall(page, launcherUrl, 'DEPISTAGE ANNE');
      await page.waitForURL(/\/viewer\/\?session=/, { timeout: 30_000 });
      await page.waitForSelector('.study');
      t.equal(await page.locator(`.study[data-study="${other.studyInstanceUid}"]`).count(), 0, 'the withdrawn study is gone from a new search');
    });

    await t.test('MR: contextual call → a study renders, scrolling changes the image', async (t) => {
      const t0 = await contextualCall(page, launcherUrl, 'PAT-TROIS DOMINIQUE');
      const mrT = await measureUntil(page, t0, false);
      timings.mrUncached = mrT;
      const c0 = (await cells(page))[0];
      t.equal(c0.studyUid, mr.studyInstanceUid, 'the MR study is shown');
      const g = await cellShot(page, 0);
      t.ok(stats(g).variance > 200, `the MR viewport is not black (variance ${stats(g).variance.toFixed(0)})`);
      t.match(await page.locator('#banner').innerText(), 'PAT-TROIS', 'banner shows the MR patient');
      const before = c0.imageIndex!;
      const box = (await page.locator('.cell[data-index="0"]').boundingBox())!;
      await toolsReady(page);
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      for (let i = 0; i < 4; i++) await page.mouse.wheel(0, 120);
      await page.waitForFunction((b) => (window as any).__viewer.cells()[0].imageIndex !== b, before, { timeout: 5000 });
      await settle(page);
      const g2 = await cellShot(page, 0);
      t.ok(diff(g, g2) > 1, `the wheel scrolls to another image (${before} → ${(await cells(page))[0].imageIndex}, pixel diff ${diff(g, g2).toFixed(2)})`);
      if (mode === 'webgl') await page.screenshot({ path: join(SHOTS, 'network-mr.png') });
    });

    t.same(pageErrors, [], 'no uncaught page errors');
    console.log(JSON.stringify({ ...timings, totalMs: Date.now() - tStart, buildMs }));
  });
}
