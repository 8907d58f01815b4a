// End-to-end: the viewer's tools in Debian's Chromium (playwright-core) at 1280×720, against a real
// Orthanc behind the stand-in of the gateway's viewer routes. A synthetic CT of known geometry and
// Hounsfield units (helpers/ct-series.ts) checks the measurements against the truth; the MG studies
// check the mammography comparison. Both rendering paths: WebGL2 (SwiftShader) and CPU
// (--disable-3d-apis), where the MPR must say it needs WebGL.
import t from 'tap';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { makeMgStudy } from './helpers/mg-study.js';
import { makeCtStudy, CT, type CtStudy } from './helpers/ct-series.js';
import { ensureViewerBuilt } from './helpers/viewer-build.js';
import { CHROMIUM, chromiumArgs, requireChromium } from './helpers/chromium.js';
import { cells, toolsReady } from './helpers/viewer-page.js';
import { startViewerServer, type ViewerServer, type TestSession } from './helpers/viewer-server.js';
import { screenshotGray, stats, diff, settle, cellShot, type Gray } from './helpers/pixels.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(repo, 'viewer', 'dist');
const SHOTS = join(repo, 'docs', 'screenshots');

let orthanc: Orthanc;
let server: ViewerServer;
let ct: CtStudy;
let mgCurrent: ReturnType<typeof makeMgStudy>;
let mgPrior: ReturnType<typeof makeMgStudy>;

const patient = {
  birthName: 'Fantome', givenNames: ['Paul'], birthDate: '19600101', sex: 'M',
  ins: { value: '160017505612345', oid: '1.2.250.1.213.1.4.8' },
};
const clinician = { name: 'Dr Jean Médecin', rpps: '10001234567' };
const study = (uid: string, over: Record<string, unknown>) => ({ studyUid: uid, date: '20250301', modalities: ['CT'], description: '', sourceCentre: 'Centre Test', kosUid: `${uid}.99`, current: false, status: 'available', ...over });

t.before(async () => {
  requireChromium();
  ensureViewerBuilt(repo);
  ct = makeCtStudy(40);
  mgCurrent = makeMgStudy({ date: '20240115', seed: 1, rightUnmirrored: true });
  mgPrior = makeMgStudy({ date: '20220110', seed: 2 });
  orthanc = await startOrthanc();
  await orthanc.upload([...ct.files, ...mgCurrent.files.map((f) => f.buffer), ...mgPrior.files.map((f) => f.buffer)]);
  const sessions: TestSession[] = [
    {
      id: 's-ct',
      document: {
        patient, clinician, studies: [study(ct.studyUid, { description: 'Scanner thoracique', current: true })],
        dicomWebRoot: '/api/sessions/s-ct/dicom-web', importUrl: '/api/sessions/s-ct/import', logoutUrl: '/auth/logout',
      },
    },
    {
      id: 's-mg',
      document: {
        patient: { ...patient, sex: 'F' }, clinician,
        studies: [
          study(mgCurrent.studyUid, { date: '20240115', modalities: ['MG'], description: 'Mammographie de dépistage', current: true }),
          study(mgPrior.studyUid, { date: '20220110', modalities: ['MG'], description: 'Mammographie de dépistage' }),
        ],
        dicomWebRoot: '/api/sessions/s-mg/dicom-web', importUrl: '/api/sessions/s-mg/import', logoutUrl: '/auth/logout',
      },
    },
  ];
  server = await startViewerServer({ distDir: DIST, orthancDicomWeb: orthanc.dicomWebUrl, sessions });
});

t.teardown(async () => {
  await server?.close();
  await orthanc?.stop();
});

type Measure = { uid: string; tool: string; imageId?: string; lines: string[] };
const measures = (page: Page) => page.evaluate(() => (window as any).__viewer.measurements()) as Promise<Measure[]>;
const number = (line: string) => Number(/(-?\d+(?:,\d+)?)/.exec(line)?.[1].replace(',', '.'));
const cellBox = async (page: Page, i: number) => (await page.locator(`.cell[data-index="${i}"] .cs`).boundingBox())!;

/** Connected bright blobs of a capture (≥ threshold): centre and area, smallest first. */
function blobs(g: Gray, threshold = 250): { x: number; y: number; area: number }[] {
  const seen = new Uint8Array(g.width * g.height);
  const out: { x: number; y: number; area: number }[] = [];
  for (let i = 0; i < seen.length; i++) {
    if (seen[i] || g.data[i] < threshold) continue;
    let sx = 0, sy = 0, area = 0;
    const stack = [i];
    seen[i] = 1;
    while (stack.length) {
      const j = stack.pop()!;
      const x = j % g.width, y = (j - x) / g.width;
      sx += x; sy += y; area++;
      for (const k of [j - 1, j + 1, j - g.width, j + g.width]) {
        if (k < 0 || k >= seen.length || seen[k] || g.data[k] < threshold) continue;
        if ((k === j - 1 && x === 0) || (k === j + 1 && x === g.width - 1)) continue;
        seen[k] = 1; stack.push(k);
      }
    }
    out.push({ x: sx / area, y: sy / area, area });
  }
  return out.sort((a, b) => a.area - b.area);
}

async function drag(page: Page, from: [number, number], to: [number, number]) {
  await page.mouse.move(from[0], from[1]);
  await page.mouse.down();
  await page.mouse.move(to[0], to[1], { steps: 8 });
  await page.mouse.up();
  await settle(page);
}

async function waitMeasure(page: Page, tool: string, count = 1): Promise<Measure[]> {
  await page.waitForFunction(([tl, n]) => (window as any).__viewer.measurements().filter((m: any) => m.tool === tl && m.lines.length).length >= (n as number), [tool, count] as const, { timeout: 10_000 })
    .catch(async (e) => { await page.screenshot({ path: join(SHOTS, `debug-${tool}.png`) }); throw new Error(`${e}: ${JSON.stringify(await measures(page))}`); });
  // Cornerstone throttles the statistics while a shape is drawn: the last ones once they stop changing
  let last = '';
  for (let i = 0; i < 20; i++) {
    const now = JSON.stringify((await measures(page)).filter((m) => m.tool === tool));
    if (now === last) break;
    last = now;
    await page.waitForTimeout(150);
  }
  return (await measures(page)).filter((m) => m.tool === tool);
}

for (const mode of ['webgl', 'cpu'] as const) {
  t.test(`viewer tools in Chromium (${mode} rendering)`, async (t) => {
    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(mode) });
    t.teardown(() => browser.close());
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const shot = async (name: string) => { if (mode === 'webgl') { await settle(page); await page.screenshot({ path: join(SHOTS, name) }); } };

    await page.goto(`${server.url}/viewer/?session=s-ct`);
    await page.waitForFunction(() => (window as any).__viewer?.cells().some((c: any) => c.rendered), null, { timeout: 30_000 });
    await toolsReady(page);
    t.equal(await page.evaluate(() => (window as any).__viewer.renderPath), mode);

    await t.test('toolbar fits 1280×720, layouts 1×1 … 3×3 and 1×3, wording', async (t) => {
      const bar = await page.locator('#toolbar').evaluate((b) => ({ scroll: b.scrollWidth, client: b.clientWidth, right: b.getBoundingClientRect().right }));
      t.ok(bar.scroll <= bar.client, `toolbar does not overflow (${bar.scroll} ≤ ${bar.client} px)`);
      const outside = await page.locator('#toolbar > *').evaluateAll((els) => els.filter((e) => (e as HTMLElement).offsetParent && e.getBoundingClientRect().right > window.innerWidth).map((e) => e.id || e.textContent));
      t.same(outside, [], 'every toolbar group is on screen');
      t.ok(await page.locator('#menu-export').isVisible(), '"Exporter" has its menu in the toolbar');
      for (const [l, n] of [['3x3', 9], ['1x3', 3], ['2x3', 6], ['1x1', 1]] as const) {
        await page.click('#menu-layout > summary');
        await page.click(`#layout-${l}`);
        t.equal((await cells(page)).length, n, `layout ${l}: ${n} viewports`);
      }
      await page.waitForFunction(() => (window as any).__viewer.cells()[0]?.rendered, null, { timeout: 20_000 });
      t.match(await page.locator('.cell[data-index="0"] .ov-bl').innerText(), /^Série 1 CT/, '"Série 1", not "Séries 1"');
      await page.waitForSelector(`.thumb[data-series="${ct.localizerUid}"] .thumb-label`);
      t.match(await page.locator(`.thumb[data-series="${ct.localizerUid}"] .thumb-label`).innerText(), /· 1 image$/, '"1 image" for a one-image series');
      t.match(await page.locator(`.thumb[data-series="${ct.axialUid}"] .thumb-label`).innerText(), /· 40 images$/);
      await page.keyboard.press('?');
      const help = await page.locator('#help').innerText();
      for (const w of ['Activer la vue suivante', 'longueur', 'ROI', 'MPR', 'Balises DICOM', 'Ciné', 'Miroir', 'Rotation', 'Annuler']) t.match(help, w, `help lists: ${w}`);
      await page.keyboard.press('Escape');
    });

    await t.test('length in mm from Pixel Spacing (within 1 %), selected, moved, deleted, undone', async (t) => {
      const box = await cellBox(page, 0);
      await page.keyboard.press('o'); // overlays off: only pixels in the capture
      await settle(page);
      const g = await screenshotGray(page, page.locator('.cell[data-index="0"] .cs'));
      await page.keyboard.press('o');
      const dots = blobs(g).filter((b) => b.area > 20 && b.area < 2000).slice(0, 2).sort((a, b) => a.x - b.x);
      t.equal(dots.length, 2, `the two marker dots are found (${JSON.stringify(dots.map((d) => Math.round(d.area)))})`);
      const p1: [number, number] = [box.x + dots[0].x, box.y + dots[0].y], p2: [number, number] = [box.x + dots[1].x, box.y + dots[1].y];
      await page.keyboard.press('l');
      await drag(page, p1, p2);
      const [len] = await waitMeasure(page, 'Length');
      const mm = number(len.lines[0]);
      t.match(len.lines[0], / mm$/, `unit mm (${len.lines[0]})`);
      t.ok(Math.abs(mm - CT.dotsMm) / CT.dotsMm < 0.01, `length ${mm} mm within 1 % of ${CT.dotsMm} mm`);
      t.match(await page.locator('#measures').innerText(), /Longueur · Image \d+/, 'listed in the side panel');
      await shot('viewer-tools-length.png');
      // move the end handle: the length follows
      await page.keyboard.press('w');
      await drag(page, p2, [p2[0] + 60, p2[1]]);
      await page.waitForFunction((before) => { const m = (window as any).__viewer.measurements().find((x: any) => x.tool === 'Length'); return m && m.lines[0] !== before; }, len.lines[0], { timeout: 5000 });
      const moved = number((await waitMeasure(page, 'Length'))[0].lines[0]);
      t.ok(moved > mm + 5, `moving a handle changes the length (${mm} → ${moved} mm)`);
      // select then delete, undo
      await page.click(`#measures .measure-go[data-tool="Length"]`);
      await page.keyboard.press('Delete');
      await page.waitForFunction(() => !(window as any).__viewer.measurements().some((x: any) => x.tool === 'Length'), null, { timeout: 5000 });
      t.pass('Delete removes the selected length');
      await page.keyboard.press('Control+z');
      await waitMeasure(page, 'Length');
      t.pass('Ctrl+Z brings it back');
    });

    await t.test('ROI on a known 100 HU region: area, mean, SD, min/max in UH; probe; ellipse; angle; bidirectional; arrow', async (t) => {
      const box = await cellBox(page, 0);
      const cx = box.x + box.width / 2, cy = box.y + box.height / 2, d = box.height * 0.09;
      await page.keyboard.press('x');
      await drag(page, [cx - d, cy - d], [cx + d, cy + d]);
      const [rect] = await waitMeasure(page, 'RectangleROI');
      const line = (k: string) => rect.lines.find((l) => l.startsWith(k)) ?? '';
      t.match(line('Moy.'), /UH$/, `mean in Hounsfield units (${rect.lines.join(' | ')})`);
      t.ok(Math.abs(number(line('Moy.')) - CT.squareHu) < 0.5, `mean ${number(line('Moy.'))} UH = ${CT.squareHu}`);
      t.ok(Math.abs(number(line('ÉT'))) < 0.5, 'SD 0 in the uniform region');
      t.match(line('Min'), /100 \/ 100 UH/, 'min / max 100 UH');
      t.match(line('Aire'), /mm²$/, 'area in mm²');
      const side = 2 * d / (box.height / (CT.size * CT.spacing)); // mm: the image fills the cell's height
      t.ok(Math.abs(number(line('Aire')) - side * side) / (side * side) < 0.1, `area ≈ ${(side * side).toFixed(0)} mm² (${line('Aire')})`);
      await page.keyboard.press('e');
      // inside the square whether Cornerstone draws it from a corner or from its centre
      await drag(page, [cx, cy + d * 1.5], [cx + d, cy + d * 2]);
      const [ell] = await waitMeasure(page, 'EllipticalROI');
      t.ok(ell.lines.some((l) => /^Moy\. : 100 UH$/.test(l)), `ellipse mean 100 UH (${ell.lines.join(' | ')})`);
      await page.keyboard.press('d');
      await page.mouse.click(cx - d * 2, cy);
      const [probe] = await waitMeasure(page, 'Probe');
      t.equal(probe.lines[0], 'Valeur : 100 UH', 'probe reads the pixel in UH');
      await page.keyboard.press('a');
      for (const [x, y] of [[cx - 3 * d, cy - 3 * d], [cx - 3 * d, cy + 3 * d], [cx + 3 * d, cy + 3 * d]]) { await page.mouse.move(x, y, { steps: 6 }); await page.mouse.click(x, y); await page.waitForTimeout(80); }
      const [angle] = await waitMeasure(page, 'Angle');
      t.ok(Math.abs(number(angle.lines[0]) - 90) < 1, `right angle measured 90° (${angle.lines[0]})`);
      await page.keyboard.press('b');
      await drag(page, [cx - 3 * d, cy - 4 * d], [cx + 3 * d, cy - 4 * d]);
      const [bi] = await waitMeasure(page, 'Bidirectional');
      t.match(bi.lines[0], /^Grand axe : .* mm$/, `bidirectional (${bi.lines.join(' | ')})`);
      page.once('dialog', (dlg) => void dlg.accept('Nodule'));
      await page.keyboard.press('n');
      await drag(page, [cx + 4 * d, cy - 2 * d], [cx + 3 * d, cy - d]);
      const [arrow] = await waitMeasure(page, 'ArrowAnnotate');
      t.equal(arrow.lines[0], 'Nodule', 'arrow keeps its text');
      const panel = await page.locator('#measures').innerText();
      for (const w of ['ROI rectangle', 'ROI ellipse', 'Valeur du pixel', 'Angle', 'Bidirectionnelle', 'Flèche et texte', 'Nodule']) t.match(panel, w, `side panel lists ${w}`);
      await shot('viewer-tools-roi.png');
      // jump to the image on click
      const before = (await cells(page))[0].imageIndex!;
      await page.mouse.move(cx, cy);
      await page.keyboard.press('Home');
      await page.waitForFunction(() => (window as any).__viewer.cells()[0].imageIndex === 0);
      await page.click('#measures .measure-go[data-tool="RectangleROI"]');
      await page.waitForFunction((i) => (window as any).__viewer.cells()[0].imageIndex === i, before, { timeout: 5000 });
      t.pass(`clicking the measurement shows its image again (${before + 1})`);
      await page.keyboard.press('w');
    });

    await t.test('window presets by modality: CT presets on CT', async (t) => {
      await page.click('#menu-presets > summary');
      const labels = await page.locator('#menu-presets .menu-items button').allInnerTexts();
      t.same(labels, ['Défaut', 'Tissus mous', 'Poumon', 'Os', 'Cerveau'], 'CT: the CT presets');
      await page.click('#preset-lung');
      const voi = (await cells(page))[0].voi!;
      t.same([voi.lower, voi.upper], [-1350, 150], 'lung preset W 1500 / C −600');
      await page.keyboard.press('1');
    });

    await t.test('flip H/V, rotate 90°, magnifier, cine, reference lines', async (t) => {
      const e0 = (await cells(page))[0] as any;
      await page.keyboard.press('h');
      const e1 = (await cells(page))[0] as any;
      t.ok(e1.flipHorizontal && !e0.flipHorizontal, 'H mirrors the image');
      t.same([e1.edges[1], e1.edges[3]], [e0.edges[3], e0.edges[1]], `left and right markers swap (${e0.edges} → ${e1.edges})`);
      await page.keyboard.press('h');
      await page.keyboard.press('v');
      t.ok(((await cells(page))[0] as any).flipVertical, 'V flips it upside down');
      await page.keyboard.press('v');
      await settle(page);
      const g0 = await cellShot(page, 0);
      await page.keyboard.press('q');
      await settle(page);
      const r = (await cells(page))[0] as any;
      t.equal(r.rotation, 90, 'Q rotates 90°');
      t.same(r.edges, [e0.edges[3], e0.edges[0], e0.edges[1], e0.edges[2]], `markers turn with the image (${e0.edges} → ${r.edges})`);
      const g1 = await cellShot(page, 0);
      t.ok(diff(g0, g1) > 1, `the rotated image is drawn (diff ${diff(g0, g1).toFixed(1)})`);
      await shot('viewer-tools-rotated.png');
      await page.keyboard.press('r');
      t.equal(((await cells(page))[0] as any).rotation, 0, 'R resets the rotation');

      const box = await cellBox(page, 0);
      await page.keyboard.press('u');
      if (mode === 'cpu') {
        await page.waitForSelector('#mpr-msg:not([hidden])');
        t.match(await page.locator('#mpr-msg').innerText(), /loupe a besoin de WebGL/, 'CPU path: the magnifier says it needs WebGL');
      } else {
        await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
        await page.mouse.down();
        await page.waitForSelector('.cell[data-index="0"] .magnifyTool', { state: 'attached', timeout: 5000 });
        t.pass('the magnifier shows under the pointer');
        await shot('viewer-tools-magnifier.png');
        await page.mouse.up();
      }
      await page.keyboard.press('w');

      await page.locator('.cell[data-index="0"]').click({ position: { x: 5, y: 5 } });
      const start = (await cells(page))[0].imageIndex!;
      await page.keyboard.press(' ');
      await page.waitForFunction((s) => (window as any).__viewer.cells()[0].imageIndex !== s, start, { timeout: 5000 });
      t.ok(await page.evaluate(() => (window as any).__viewer.cine), 'Space plays the stack');
      await page.waitForFunction((s) => { const i = (window as any).__viewer.cells()[0].imageIndex; return i !== s && i !== s + 1; }, start, { timeout: 5000 });
      t.pass('cine advances frame after frame');
      t.match(await page.locator('#cine-toggle').innerText(), 'Pause');
      await page.keyboard.press(' ');
      const stopped = (await cells(page))[0].imageIndex;
      await page.waitForTimeout(400);
      t.equal((await cells(page))[0].imageIndex, stopped, 'Space again pauses');

      // reference lines: the axial's plane across the sagittal localizer beside it
      await page.click('#menu-layout > summary');
      await page.click('#layout-1x2');
      await page.locator('.cell[data-index="1"]').click({ position: { x: 5, y: 5 } });
      await page.click(`.thumb[data-series="${ct.localizerUid}"]`);
      await page.waitForFunction((u) => { const c = (window as any).__viewer.cells()[1]; return c?.seriesUid === u && c.rendered; }, ct.localizerUid, { timeout: 15_000 });
      await page.locator('.cell[data-index="0"]').click({ position: { x: 5, y: 5 } });
      const linesIn = () => page.locator('.cell[data-index="1"] svg line, .cell[data-index="1"] svg path').count();
      const none = await linesIn();
      await page.keyboard.press('Shift+R');
      await page.waitForFunction(() => document.querySelectorAll('.cell[data-index="1"] svg line, .cell[data-index="1"] svg path').length > 0, null, { timeout: 5000 });
      t.ok((await linesIn()) > none, 'Shift+R draws the axial slice as a line on the localizer');
      await shot('viewer-tools-reference-lines.png');
      await page.keyboard.press('Shift+R');
    });

    await t.test('DICOM tag browser: search by tag and by name, sequences expand', async (t) => {
      await page.locator('.cell[data-index="0"]').click({ position: { x: 5, y: 5 } });
      await page.keyboard.press('Shift+T');
      await page.waitForSelector('#tags:not([hidden])');
      await page.fill('#tags-search', '0010,0010');
      const visible = await page.locator('.tag-list > .tag-row:not([hidden])').allInnerTexts();
      t.equal(visible.length, 1, 'one attribute for (0010,0010)');
      t.match(visible[0], /\(0010,0010\)\s*PatientName\s*PN\s*FANTOME\^CT|FANTOME/, `PatientName found (${visible[0]})`);
      await page.fill('#tags-search', 'codemeaning');
      t.ok(await page.locator('details[data-tag="00082218"]').evaluate((d) => (d as HTMLDetailsElement).open), 'a match inside a sequence opens it (Anatomic Region Sequence)');
      t.match(await page.locator('details[data-tag="00082218"]').innerText(), 'Thorax');
      await shot('viewer-tools-tags.png');
      await page.keyboard.press('Escape');
      t.notOk(await page.locator('#tags').isVisible(), 'Escape closes it');
    });

    await t.test('MPR: three planes with crosshairs, or a clear message', async (t) => {
      await page.click('#menu-layout > summary');
      await page.click('#layout-1x1');
      await page.click(`.thumb[data-series="${ct.gapUid}"]`);
      await page.waitForFunction((u) => (window as any).__viewer.cells()[0]?.seriesUid === u, ct.gapUid);
      await page.click('#mpr-open');
      await page.waitForSelector('#mpr-msg:not([hidden])');
      if (mode === 'cpu') t.match(await page.locator('#mpr-msg').innerText(), /a besoin de WebGL/, 'CPU path: MPR needs WebGL, said plainly');
      else t.match(await page.locator('#mpr-msg').innerText(), /espacement entre les coupes est irrégulier/, 'a series with a missing slice: irregular spacing, said plainly');
      await page.click(`.thumb[data-series="${ct.axialUid}"]`);
      await page.waitForFunction((u) => { const c = (window as any).__viewer.cells()[0]; return c?.seriesUid === u && c.rendered; }, ct.axialUid);
      await page.click('#mpr-open');
      if (mode === 'cpu') {
        await page.waitForSelector('#mpr-msg:not([hidden])');
        t.match(await page.locator('#mpr-msg').innerText(), /a besoin de WebGL/, 'CPU path: no MPR, the native slices stay');
        t.notOk(await page.locator('#mpr').isVisible());
        return;
      }
      await page.waitForFunction(() => (window as any).__viewer.mpr()?.length === 3, null, { timeout: 30_000 });
      const planes = ['axial', 'sagittal', 'coronal'];
      for (const p of planes) {
        const loc = page.locator(`[data-mpr-plane="${p}"] .cs`);
        let g = await screenshotGray(page, loc);
        for (let i = 0; i < 40 && stats(g).variance < 100; i++) { await page.waitForTimeout(250); g = await screenshotGray(page, loc); }
        t.ok(stats(g).variance > 100, `${p} plane drawn (variance ${stats(g).variance.toFixed(0)})`);
      }
      const normals = ((await page.evaluate(() => (window as any).__viewer.mpr())) as { normal: number[] }[]).map((v) => v.normal.map((x) => Math.round(Math.abs(x))));
      t.same(normals, [[0, 0, 1], [1, 0, 0], [0, 1, 0]], 'axial, sagittal, coronal planes');
      const before = (await page.evaluate(() => (window as any).__viewer.mpr())) as { focalPoint: number[] }[];
      const ax = (await page.locator('[data-mpr-plane="axial"] .cs').boundingBox())!;
      // click beside the crosshair centre in the axial plane: the sagittal and coronal slices move there
      await page.mouse.click(ax.x + ax.width / 2 + ax.height * 0.2, ax.y + ax.height * 0.3);
      await page.waitForFunction((b) => { const m = (window as any).__viewer.mpr(); return Math.abs(m[1].focalPoint[0] - b[1].focalPoint[0]) > 2 && Math.abs(m[2].focalPoint[1] - b[2].focalPoint[1]) > 2; }, before, { timeout: 5000 })
        .then(() => t.pass('the crosshair moved in the axial plane moves the sagittal and coronal slices'))
        .catch(async () => t.fail(`crosshair: ${JSON.stringify(before)} → ${JSON.stringify(await page.evaluate(() => (window as any).__viewer.mpr()))}`));
      const after = (await page.evaluate(() => (window as any).__viewer.mpr())) as { focalPoint: number[] }[];
      t.ok(Math.abs(after[0].focalPoint[2] - before[0].focalPoint[2]) < 0.01, 'the axial slice itself stays');
      await shot('viewer-tools-mpr.png');
      await page.keyboard.press('Escape');
      await page.waitForFunction(() => !(window as any).__viewer.mpr());
      t.ok(await page.locator('#grid').isVisible(), 'Escape closes the MPR and the grid is back');
    });

    await t.test('mammography: linked zoom with the prior, clear labels, views of an MG stack, detector-plane mm', async (t) => {
      await page.goto(`${server.url}/viewer/?session=s-mg`);
      await page.waitForFunction(() => document.body.dataset.hung === 'four', null, { timeout: 30_000 });
      await toolsReady(page);
      t.equal(await page.locator('#hanging-toggle').innerText(), 'CC actuel / précédent', 'the button says where it goes');
      const bar = await page.locator('#toolbar').evaluate((b) => ({ scroll: b.scrollWidth, client: b.clientWidth }));
      t.ok(bar.scroll <= bar.client, `with the mammography button, the toolbar still fits (${bar.scroll} ≤ ${bar.client} px)`);
      await page.keyboard.press('m');
      await page.waitForFunction(() => document.body.dataset.hung === 'cop-CC', null, { timeout: 30_000 });
      const cop = await cells(page);
      t.same(cop.map((c) => c.label), ['RCC', 'LCC', 'RCC · précédent 10/01/2022', 'LCC · précédent 10/01/2022'], 'the prior is "précédent" + its date, no "(antérieur)"');
      t.equal(await page.locator('#hanging-toggle').innerText(), 'MLO actuel / précédent');
      if (mode === 'webgl') await page.waitForFunction(() => document.querySelector('#sync-state')?.textContent !== '', null, { timeout: 5000 });
      const box = await cellBox(page, 0);
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down({ button: 'right' });
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2 - 120, { steps: 8 });
      await page.mouse.up({ button: 'right' });
      await settle(page);
      const z = (await cells(page)).map((c) => c.zoom!);
      t.ok(Math.abs(z[0] - 1) > 0.05, `current RCC zoomed (${z[0].toFixed(2)})`);
      if (mode === 'webgl') t.ok(Math.abs(z[2] - z[0]) < 0.02, `its prior follows (${z[2].toFixed(2)})`);
      t.ok(Math.abs(z[1] - z[0]) > 0.05, `the other view does not (${z[1].toFixed(2)})`);
      await shot('viewer-tools-mg-prior.png');
      await page.keyboard.press('m');
      await page.waitForFunction(() => document.body.dataset.hung === 'cop-MLO', null, { timeout: 30_000 });
      t.equal(await page.locator('#hanging-toggle').innerText(), 'Quatre incidences', '"Quatre incidences" goes to the four views');
      await page.click('#hanging-toggle');
      await page.waitForFunction(() => document.body.dataset.hung === 'four', null, { timeout: 30_000 });
      t.pass('and it does');

      // the MG presets: the image's own window and an automatic one, no CT presets
      await page.click('#menu-presets > summary');
      const labels = await page.locator('#menu-presets .menu-items button').allInnerTexts();
      t.same(labels, ['Défaut', 'Image 1', 'Auto (histogramme)'], `MG: the image's window and auto (${labels})`);
      await page.click('#preset-auto');
      const auto = (await cells(page))[0].voi!;
      t.ok(auto.upper - auto.lower !== 2600, `auto window from the histogram (${auto.lower.toFixed(0)} … ${auto.upper.toFixed(0)})`);

      // a length on a mammogram: Imager Pixel Spacing only, so mm at the detector, said so
      await page.keyboard.press('l');
      await drag(page, [box.x + box.width * 0.3, box.y + box.height * 0.5], [box.x + box.width * 0.6, box.y + box.height * 0.5]);
      const [len] = await waitMeasure(page, 'Length');
      t.match(len.lines[0], /mm \(détecteur\)$/, `detector-plane mm (${len.lines[0]})`);
      t.match(await page.locator('#measures').innerText(), /plan du détecteur/, 'the panel explains the caveat');
      await page.keyboard.press('w');

      // the MG stack from its thumbnail, in one viewport: each image says its view
      await page.click('#menu-layout > summary');
      await page.click('#layout-1x1');
      await page.click(`.thumb[data-series="${mgCurrent.seriesUid}"]`);
      await page.waitForFunction(() => (window as any).__viewer.cells()[0]?.count === 4 && (window as any).__viewer.cells()[0].rendered, null, { timeout: 15_000 });
      const seen: string[] = [];
      await page.mouse.move(box.x + 10, box.y + 10);
      await page.keyboard.press('Home');
      for (let i = 0; i < 4; i++) {
        await page.waitForFunction((k) => (window as any).__viewer.cells()[0].imageIndex === k, i);
        await settle(page);
        seen.push(await page.locator('.cell[data-index="0"] .ov-label').innerText());
        await page.keyboard.press('ArrowDown');
      }
      t.same(seen, ['RCC', 'LCC', 'RMLO', 'LMLO'], 'each image of the MG stack shows its laterality and view');
      // overlays stay readable on an inverted (white) image: the text has a dark backing
      await page.keyboard.press('i');
      const bg = await page.locator('.cell[data-index="0"] .ov-label').evaluate((e) => getComputedStyle(e).backgroundColor);
      t.match(bg, /rgba\(0, 0, 0, 0\.5/, `overlay text on a dark backing (${bg})`);
      await shot('viewer-tools-mg-stack.png');
    });

    t.same(pageErrors, [], 'no uncaught page errors');
  });
}
