// End-to-end through the real demo network (box-b consumer, box-a source) in Debian's Chromium:
// "Exporter" downloads a PNG of the viewport (its overlay burned in) and the series as a DICOM zip,
// each audited by box-b; a Length annotation made with Cornerstone's annotation API is saved as a
// DICOM SR with the import into box-b's local PACS and put back when the exam is reopened; an import
// whose call names another patient is refused with the reason shown in the viewer.
import t from 'tap';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { startDemoNetwork } from '../../sandbox/network.js';
import { ensureViewerBuilt } from './helpers/viewer-build.js';
import { CHROMIUM, chromiumArgs, requireChromium } from './helpers/chromium.js';
import { cells, toolsReady } from './helpers/viewer-page.js';
import { settle } from './helpers/pixels.js';
import { sqliteOf } from '../helpers/box.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = join(repo, 'docs', 'screenshots');
const PATIENT = 'PAT-TROIS DOMINIQUE'; // the MR study: one stack in one viewport

t.before(() => { requireChromium(); ensureViewerBuilt(repo); mkdirSync(SHOTS, { recursive: true }); });

const anyRendered = () => (window as any).__viewer?.cells().some((c: any) => c.rendered);

/** The launcher's contextual call for the patient (its form edited by `edit` first), then the viewer. */
async function openViewer(page: Page, launcherUrl: string, pscIssuer: string, edit?: Record<string, string>): Promise<void> {
  await page.goto(launcherUrl);
  const form = page.locator('section', { hasText: PATIENT }).locator('form');
  if (edit) await form.evaluate((f, e) => { for (const [k, v] of Object.entries(e)) (f.querySelector(`input[name="${k}"]`) as HTMLInputElement).value = v; }, edit);
  await form.locator('button[type="submit"]').click({ noWaitAfter: true });
  await page.waitForURL((u) => u.href.startsWith(pscIssuer) || /\/viewer\/\?session=/.test(u.href), { timeout: 30_000 });
  if (page.url().startsWith(pscIssuer)) {
    await page.click('button[data-rpps]');
    await page.waitForURL((u) => !u.href.startsWith(pscIssuer) || /\/interaction\//.test(u.pathname), { timeout: 15_000 });
    await page.waitForLoadState();
    if (page.url().startsWith(pscIssuer) && await page.locator('#confirm').count()) await page.click('#confirm');
  }
  await page.waitForURL(/\/viewer\/\?session=/, { timeout: 30_000 });
  await page.waitForFunction(anyRendered, null, { timeout: 30_000, polling: 'raf' });
  await toolsReady(page);
}

t.test('Exporter (PNG, DICOM zip), measurements saved as SR with the import and restored, refusal shown', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'viewer-export-run-'));
  const pkiDir = mkdtempSync(join(tmpdir(), 'viewer-export-pki-'));
  const net = await startDemoNetwork({ runDir, pkiDir, logLevel: 'error' });
  t.teardown(async () => { await net.close(); rmSync(runDir, { recursive: true, force: true }); rmSync(pkiDir, { recursive: true, force: true }); });
  const boxB = net.boxes['box-b'];
  const launcherUrl = net.manifest.boxes[1].launcherUrl!;
  const issuer = net.manifest.psc.issuer;
  const mr = net.manifest.studies.find((s) => s.modality === 'MR')!;
  const audit = (route: string) => sqliteOf(boxB).prepare('SELECT * FROM audit WHERE route = ? AND study_uid = ? ORDER BY id').all(route, mr.studyInstanceUid) as any[];

  const userDataDir = mkdtempSync(join(tmpdir(), 'viewer-export-chromium-'));
  const downloads = mkdtempSync(join(tmpdir(), 'viewer-export-dl-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: chromiumArgs('webgl'), ignoreHTTPSErrors: true, viewport: { width: 1600, height: 1000 }, acceptDownloads: true,
  });
  t.teardown(async () => { await context.close(); rmSync(userDataDir, { recursive: true, force: true }); rmSync(downloads, { recursive: true, force: true }); });
  const page = context.pages()[0] ?? await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const warnings: string[] = [];
  page.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') warnings.push(m.text().slice(0, 500)); });

  await openViewer(page, launcherUrl, issuer);
  t.equal((await cells(page))[0].studyUid, mr.studyInstanceUid, 'the MR study is shown');
  await settle(page);

  await t.test('PNG of the viewport, overlay burned in, audited with its hash', async (t) => {
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.click('#menu-export > summary').then(() => page.click('#export-png'))]);
    t.match(dl.suggestedFilename(), /^capture-MR-\d{14}\.png$/);
    const file = join(downloads, 'capture.png');
    await dl.saveAs(file);
    const png = readFileSync(file);
    t.same(png.subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'a PNG signature');
    // decoded by the browser: the image, and white overlay text in the top-left corner (the patient's name)
    const d = await page.evaluate(async (b64) => {
      const bmp = await createImageBitmap(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' }));
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const ctx = c.getContext('2d')!;
      ctx.drawImage(bmp, 0, 0);
      const all = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
      let s = 0, s2 = 0;
      for (let i = 0; i < all.length; i += 4) { s += all[i]; s2 += all[i] * all[i]; }
      const n = all.length / 4;
      const corner = ctx.getImageData(0, 0, Math.min(300, bmp.width), Math.min(40, bmp.height)).data;
      let white = 0;
      for (let i = 0; i < corner.length; i += 4) if (corner[i] > 240 && corner[i + 1] > 240 && corner[i + 2] > 240) white++;
      return { width: bmp.width, height: bmp.height, variance: s2 / n - (s / n) ** 2, white };
    }, png.toString('base64'));
    t.ok(d.width > 200 && d.height > 200, `decodes (${d.width}×${d.height})`);
    t.ok(d.variance > 100, `shows the image (variance ${d.variance.toFixed(0)})`);
    t.ok(d.white > 30, `overlay text burned in the top-left corner (${d.white} white pixels)`);
    const rows = audit('export-png');
    t.equal(rows.length, 1, 'box-b audited the export');
    t.equal(rows[0].outcome, `PNG sha256:${createHash('sha256').update(png).digest('hex')}`, 'with the hash of the downloaded file');
    t.equal(rows[0].bytes, png.length);
    t.ok(rows[0].actor_rpps && rows[0].instance_uid, 'who exported which image');
    copyFileSync(file, join(SHOTS, 'export-png.png'));
  });

  await t.test('the series as a DICOM zip: every file parses, audited', async (t) => {
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#menu-export > summary').then(() => page.click('#export-zip'))]);
    const file = join(downloads, 'serie.zip');
    await dl.saveAs(file);
    t.equal(await dl.failure(), null, 'download complete');
    execFileSync('unzip', ['-q', '-t', file]);
    const out = join(downloads, 'zip');
    execFileSync('unzip', ['-q', file, '-d', out]);
    const [seriesDir] = readdirSync(out);
    const files = readdirSync(join(out, seriesDir));
    t.equal(files.length, (await cells(page))[0].count, 'one Part 10 file per image of the series');
    for (const f of files) execFileSync('dcmdump', ['-q', join(out, seriesDir, f)], { stdio: 'pipe' });
    t.pass(`${files.length} files parse (dcmdump)`);
    const rows = audit('export-dicom-zip');
    t.equal(rows.length, 1, 'box-b audited the download');
    t.match(rows[0], { status: 200, series_uid: seriesDir, outcome: `${files.length}/${files.length} instances` });
  });

  let made: { imageId: string; points: number[][]; length: number };
  await t.test('a Length annotation saved as DICOM SR with the import, in the local PACS', async (t) => {
    made = await page.evaluate(async () => {
      const { core, tools } = await (window as any).__viewer.cornerstone();
      const cell = (window as any).__viewer.cells()[0];
      const vp = core.getRenderingEngine('drimbox-engine').getViewport(cell.viewportId);
      const imageId = vp.getCurrentImageId();
      const p1 = core.utilities.imageToWorldCoords(imageId, [40, 50]);
      const p2 = core.utilities.imageToWorldCoords(imageId, [160, 120]);
      const length = Math.hypot(p2[0] - p1[0], p2[1] - p1[1], p2[2] - p1[2]);
      const FrameOfReferenceUID = core.metaData.get('imagePlaneModule', imageId).frameOfReferenceUID;
      const cam = vp.getCamera();
      // drawn by Cornerstone's Length tool (the toolbar's measurement tools are another module's)
      try { tools.addTool(tools.LengthTool); } catch { /* already there */ }
      const group = tools.ToolGroupManager.getToolGroup('drimbox-tools');
      if (!group.hasTool('Length')) group.addTool('Length');
      group.setToolEnabled('Length');
      tools.annotation.state.addAnnotation({
        annotationUID: crypto.randomUUID(), highlighted: false, invalidated: false, isLocked: false, isVisible: true,
        metadata: { toolName: 'Length', referencedImageId: imageId, FrameOfReferenceUID, viewPlaneNormal: cam.viewPlaneNormal, viewUp: cam.viewUp },
        data: { label: '', handles: { points: [p1, p2], activeHandleIndex: null, textBox: { hasMoved: false } }, cachedStats: { [`imageId:${imageId}`]: { length, unit: 'mm' } } },
      }, FrameOfReferenceUID);
      vp.render();
      return { imageId, points: [Array.from(p1) as number[], Array.from(p2) as number[]], length };
    });
    t.ok(made.length > 10, `a ${made.length.toFixed(2)} mm length on the image`);
    const sent = page.waitForRequest((r) => r.method() === 'POST' && /\/import$/.test(r.url()));
    await page.click('#menu-more > summary'); // the import is in the toolbar's "Plus" menu
    await page.click('#import');
    const body = JSON.parse((await sent).postData() ?? '{}');
    t.ok(typeof body.measurements === 'string' && body.measurements.length > 100, 'the import carries the measurement report');
    if (!body.measurements) t.comment(warnings.join('\n'));
    await page.waitForSelector('#import-status[data-state]', { timeout: 60_000 });
    t.equal(await page.locator('#import-status').getAttribute('data-state'), 'done', `import done (${await page.locator('#import-status').innerText()})`);
    const srSeries = await boxB.pacs.findSeries(mr.studyInstanceUid, { Modality: 'SR' });
    t.equal(srSeries.length, 1, 'a measurement report series in the local PACS');
    if (!srSeries.length) t.comment(JSON.stringify(await boxB.pacs.findSeries(mr.studyInstanceUid, {})).slice(0, 2000));
    const rows = audit('import');
    t.match(rows.at(-1), { status: 200 }, 'the import is audited');
  });

  await t.test('the exam reopened: the measurement is back, equal', async (t) => {
    await openViewer(page, launcherUrl, issuer);
    await page.waitForSelector('body[data-measurements="1"]', { state: 'attached', timeout: 20_000 });
    const back = await page.evaluate(async () => {
      const { tools } = await (window as any).__viewer.cornerstone();
      try { tools.addTool(tools.LengthTool); } catch { /* already there */ }
      const group = tools.ToolGroupManager.getToolGroup('drimbox-tools');
      if (!group.hasTool('Length')) group.addTool('Length');
      group.setToolEnabled('Length');
      const list = tools.annotation.state.getAllAnnotations().filter((a: any) => a.metadata.toolName === 'Length');
      return list.map((a: any) => ({ imageId: a.metadata.referencedImageId, points: a.data.handles.points.map((p: number[]) => Array.from(p)), length: Object.values(a.data.cachedStats as Record<string, { length: number }>)[0]?.length }));
    });
    t.equal(back.length, 1, 'one Length annotation restored');
    const frameOf = (id: string) => /\/instances\/[^/]+\/frames\/\d+$/.exec(id)?.[0]; // the session (so the URL root) is new
    t.equal(frameOf(back[0].imageId), frameOf(made.imageId), `on the same image (${frameOf(made.imageId)})`);
    t.ok(Math.abs(back[0].length - made.length) < 1e-3, `same length (${back[0].length} vs ${made.length})`);
    const far = Math.max(...back[0].points.flatMap((p: number[], i: number) => p.map((v, k) => Math.abs(v - made.points[i][k]))));
    t.ok(far < 1e-2, `same end points (largest difference ${far.toExponential(2)} mm)`);
    await settle(page);
    await page.screenshot({ path: join(SHOTS, 'measurement-restored.png') });
    // exported now, the PNG shows the measurement too (Cornerstone draws it in yellow)
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.click('#menu-export > summary').then(() => page.click('#export-png'))]);
    const file = join(downloads, 'with-measurement.png');
    await dl.saveAs(file);
    const yellow = await page.evaluate(async (b64) => {
      const bmp = await createImageBitmap(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' }));
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const ctx = c.getContext('2d')!;
      ctx.drawImage(bmp, 0, 0);
      const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 180 && d[i + 1] > 180 && d[i + 2] < 90) n++;
      return n;
    }, readFileSync(file).toString('base64'));
    t.ok(yellow > 100, `the exported PNG shows the measurement (${yellow} yellow pixels)`);
    copyFileSync(file, join(SHOTS, 'export-png-measurement.png'));
  });

  await t.test('a call naming another patient: the import is refused, the reason shown', async (t) => {
    await openViewer(page, launcherUrl, issuer, { 'Patient.birthDate': '1980-01-01' });
    await page.click('#menu-more > summary'); // the import is in the toolbar's "Plus" menu
    await page.click('#import');
    await page.waitForSelector('#import-status[data-state]', { timeout: 30_000 });
    const text = await page.locator('#import-status').innerText();
    t.equal(await page.locator('#import-status').getAttribute('data-state'), 'failed');
    t.match(text, /Import refusé.*date de naissance \(appel : 01\/01\/1980, examen : 28\/03\/1979\)/, `the viewer says why (${text})`);
    await page.screenshot({ path: join(SHOTS, 'import-refused.png') });
  });

  t.same(pageErrors, [], 'no uncaught page errors');
});
