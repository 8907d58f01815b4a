// End-to-end in Debian's Chromium against the real two-box network (test/helpers/network.ts: PSC and
// DMP simulators, box A source with Orthanc, box B consumer): four women with a current 4-view
// screening mammogram and a prior two years older, published to the DMP; the batch created by
// uploading a CSV on the batches page, its prefetch followed on the page's progress bars; then the
// reading worklist, keyboard only: the 2 s guard on N, a normal case and the toast's undo, a
// positive case with a lesion, a technical recall, a second verdict refused (amend instead), an
// amendment; the results exported as CSV and checked. Then the CPU rendering path and its
// keystroke → all views drawn times (bench/screening-viewer.ts's measure), and a deferral with its reason.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { Agent, request } from 'undici';
import { parse } from 'csv-parse/sync';
import { startConsumerNetwork, type ConsumerNetwork } from '../helpers/network.js';
import { testPki } from '../helpers/pki.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { nirWithKey } from '../../sandbox/demo-data/catalogue.js';
import { SESSION_COOKIE } from '../../gateway/src/trust/sessions.js';
import { ensureViewerBuilt } from './helpers/viewer-build.js';
import { CHROMIUM, chromiumArgs, requireChromium, type RenderMode } from './helpers/chromium.js';
import { settle } from './helpers/pixels.js';
import { measureNextCaseInPage } from '../../bench/screening-viewer.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = join(repo, 'docs', 'screenshots');
const PATIENTS = [0, 1, 2, 3].map((i) => ({ ins: nirWithKey(`279037512${3400 + i}`), accession: `SCR-CUR-${i}` }));

t.before(() => { requireChromium(); ensureViewerBuilt(repo); mkdirSync(SHOTS, { recursive: true }); });

interface CaseDoc { id: string; position: number; state: string; accessionNumber?: string; verdict: null | { outcome: string; readerRpps: string; timeSpentMs: number; right?: { acr: number; location: string; signs: string[] }; viewsToRedo?: string[]; amendedAt?: string } }

type W = { __screening: { caseId?: string; shownCase?: string; index: number; renderPath?: string; cells(): { label: string; studyUid?: string; rendered: boolean; error?: string }[] } };
const shown = (page: Page) => page.evaluate(() => (window as unknown as W).__screening.shownCase);
/** waits until the worklist shows case `id`, every view drawn */
const waitShown = (page: Page, id: string) => page.waitForSelector(`body[data-case-shown="${id}"]`, { state: 'attached', timeout: 30_000 });
const normalActive = (page: Page) => page.waitForSelector('#key-normal:not([data-waiting])', { timeout: 10_000 });

async function newContext(mode: RenderMode, sessionId: string, userUrl: string): Promise<{ context: BrowserContext; page: Page; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'screening-chromium-'));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: chromiumArgs(mode), ignoreHTTPSErrors: true, viewport: { width: 1920, height: 1080 }, acceptDownloads: true });
  // the PSC session box B opened for the reader (a real PSC simulator token): the browser's cookie
  await context.addCookies([{ name: SESSION_COOKIE, value: sessionId, url: userUrl }]);
  return { context, page: context.pages()[0] ?? await context.newPage(), dir };
}

t.test('screening: batch from CSV with live progress, keyboard reading, amend, CSV results', async (t) => {
  const net: ConsumerNetwork = await startConsumerNetwork({ consumerOrthanc: false, consumerOwnOrigin: true });
  t.teardown(() => net.close());
  for (const [i, p] of PATIENTS.entries()) {
    for (const [date, accession, seed] of [['20241105', p.accession, 10 + i], ['20221020', `SCR-PRI-${i}`, 40 + i]] as const) {
      // the third woman's current exam comes from a modality storing the right breast unmirrored: its R views must be flipped
      const s = makeMgStudy({ patientId: `SCR-${i}`, patientName: 'DUPONT^MARIE ANNE', birthDate: '19790312', sex: 'F', date, accession, seed, size: 'small', lesion: 'none', rightUnmirrored: i === 2 && date === '20241105' });
      await net.publish(s.files.map((f) => f.part10), { ins: p.ins, accession, studyDate: date });
    }
  }
  const login = await net.login();
  const sessionId = login.cookie.slice(SESSION_COOKIE.length + 1);
  const userUrl = net.boxB.userUrl;
  const pki = await testPki();
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert) } });
  t.teardown(() => agent.close());
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await request(`${userUrl}${path}`, { method: method as never, dispatcher: agent, headers: { cookie: login.cookie, accept: 'application/json', origin: new URL(userUrl).origin, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const text = await r.body.text();
    return { status: r.statusCode, json: text && r.headers['content-type']?.toString().includes('json') ? JSON.parse(text) : undefined, text };
  };

  const { context, page, dir } = await newContext('webgl', sessionId, userUrl);
  t.teardown(async () => { await context.close(); rmSync(dir, { recursive: true, force: true }); });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));

  let batchId = '';
  let cases: CaseDoc[] = [];
  const caseOf = async (i: number) => ((await api('GET', `/api/screening/batches/${batchId}`)).json.cases as CaseDoc[]).find((c) => c.id === cases[i].id)!;

  await t.test('batches page: CSV upload creates the batch; its progress bars fill from the event stream', async (t) => {
    await page.goto(`${userUrl}/viewer/screening.html`);
    await page.waitForSelector(`#reader[data-rpps="${login.rpps}"]`);
    t.match(await page.locator('#reader').innerText(), login.rpps, 'the reader’s PSC identity (RPPS) is shown');
    const csv = ['ins;insOid;birthDate;sex;familyName;givenName;accessionNumber',
      ...PATIENTS.map((p) => `${p.ins};1.2.250.1.213.1.4.10;19790312;F;DUPONT;MARIE;${p.accession}`)].join('\r\n');
    await page.fill('#batch-name', 'Séance e2e');
    await page.setInputFiles('#batch-file', { name: 'seance.csv', mimeType: 'text/csv', buffer: Buffer.from(csv, 'utf8') });
    await page.click('#batch-create');
    await page.waitForFunction(() => /créée/.test(document.getElementById('page-msg')?.textContent ?? ''), null, { timeout: 15_000 });
    const row = page.locator('tr.batch', { hasText: 'Séance e2e' });
    batchId = (await row.getAttribute('data-batch'))!;
    t.ok(batchId, `the new batch is listed (${batchId})`);
    // what the bar showed along the way, read by the page itself as the stream updates it
    await page.evaluate((id) => {
      const bar = document.querySelector(`tr.batch[data-batch="${id}"] .batch-progress`) as HTMLElement;
      const seen: string[] = [bar.dataset.done ?? ''];
      new MutationObserver(() => { if (seen[seen.length - 1] !== bar.dataset.done) seen.push(bar.dataset.done ?? ''); }).observe(bar, { attributes: true });
      (window as unknown as { seen: string[] }).seen = seen;
    }, batchId);
    await page.click(`tr.batch-cases[data-batch-cases="${batchId}"] summary`);
    await page.waitForSelector(`tr.batch[data-batch="${batchId}"][data-state="ready"]`, { timeout: 120_000 });
    const bar = row.locator('.batch-progress');
    const [done, total] = [Number(await bar.getAttribute('data-done')), Number(await bar.getAttribute('data-total'))];
    t.equal(total, 32, 'the batch bar counts 4 cases × (4 current + 4 prior views)');
    t.equal(done, total, 'and fills up');
    t.match(await bar.innerText(), /32 \/ 32 images/, 'its text says how many images');
    t.comment(`batch bar values seen: ${(await page.evaluate(() => (window as unknown as { seen: string[] }).seen)).join(' → ')}`);
    await page.waitForFunction((id) => [...document.querySelectorAll(`tr.batch-cases[data-batch-cases="${id}"] .case-row`)].filter((r) => (r as HTMLElement).dataset.state === 'ready').length === 4, batchId, { timeout: 15_000 });
    t.match(await page.locator(`tr.batch-cases[data-batch-cases="${batchId}"] .case-row`).first().innerText(), /Prêt · 8 \/ 8 images/, 'each case has its own bar');
    const doc = await api('GET', `/api/screening/batches/${batchId}`);
    cases = (doc.json.cases as CaseDoc[]).sort((a, b) => a.position - b.position);
    t.same(cases.map((c) => c.state), ['ready', 'ready', 'ready', 'ready']);
    await settle(page);
    await page.screenshot({ path: join(SHOTS, 'screening-batches.png') });
  });

  await t.test('worklist: the 2 s guard; the first case hung current over prior, L1 report beside, reader identity', async (t) => {
    // N the instant the first case is drawn: sent by the page itself (a key from the test process could come
    // after the 2 s on a loaded machine), through the worklist's own keydown handler
    await page.addInitScript(() => {
      if (!location.search.includes('batch=')) return;
      const w = window as unknown as { __earlyKey?: { case?: string; waiting: boolean; problem?: string | null; after?: number } };
      const obs = new MutationObserver(() => {
        const id = document.body.dataset.caseShown;
        if (!id || w.__earlyKey) return;
        obs.disconnect();
        w.__earlyKey = { case: id, waiting: !!document.querySelector('#key-normal[data-waiting]') };
        const at = performance.now();
        document.dispatchEvent(new KeyboardEvent('keydown', { key: 'n', bubbles: true }));
        w.__earlyKey.problem = document.getElementById('problem')?.textContent;
        w.__earlyKey.after = performance.now() - at;
      });
      document.addEventListener('DOMContentLoaded', () => obs.observe(document.body, { attributes: true, attributeFilter: ['data-case-shown'] }));
    });
    await page.click(`tr.batch[data-batch="${batchId}"] a.open`);
    await waitShown(page, cases[0].id);
    const early = await page.waitForFunction(() => (window as unknown as { __earlyKey?: unknown }).__earlyKey, null, { timeout: 5_000 }).then((h) => h.jsonValue()) as { case: string; waiting: boolean; problem?: string };
    t.equal(early.case, cases[0].id, 'N pressed as the first case is shown');
    t.ok(early.waiting, 'the N button shows it is not active yet');
    t.match(early.problem, /2 premières secondes/, 'the 2 s guard: N right after the case opens does nothing, and the panel says why');
    t.equal(await shown(page), cases[0].id, 'still on the first case');
    t.equal((await caseOf(0)).verdict, null, 'nothing recorded');
    const cells = await page.evaluate(() => (window as unknown as W).__screening.cells());
    t.same(cells.map((c) => c.label.replace(/ · précédent.*/, ' prior')), ['RCC', 'LCC', 'RMLO', 'LMLO', 'RCC prior', 'LCC prior', 'RMLO prior', 'LMLO prior'], '4 current views over 4 prior views');
    t.ok(cells.every((c) => c.rendered && !c.error), 'all 8 views drawn');
    t.equal(new Set(cells.slice(0, 4).map((c) => c.studyUid)).size, 1, 'top row: one study');
    t.not(cells[0].studyUid, cells[4].studyUid, 'bottom row: another study (the prior)');
    t.match(await page.locator('#reader').innerText(), login.rpps, 'the reader’s RPPS in the verdict panel');
    // the L1 report (from the DMP, through the case's session): as text, or its document in a frame
    const report = await page.waitForFunction(async () => {
      const text = document.querySelector('#report .report-text')?.textContent ?? '';
      if (text.length > 40 && !/Chargement/.test(text)) return `text ${text.length}`;
      const src = document.querySelector('#report iframe')?.getAttribute('src');
      if (!src) return false;
      const r = await fetch(src, { credentials: 'same-origin' });
      return r.ok && (await r.text()).length > 40 ? `${r.headers.get('content-type')}` : false;
    }, null, { timeout: 10_000, polling: 250 }).then((h) => h.jsonValue(), () => undefined);
    t.ok(report, `the L1 report is shown beside the images (${report ?? await page.locator('#report').innerText()})`);
  });

  await t.test('N: normal recorded in one key, next case; the toast’s undo takes it back', async (t) => {
    await normalActive(page);
    await page.keyboard.press('n');
    await waitShown(page, cases[1].id);
    const v = (await caseOf(0)).verdict!;
    t.equal(v?.outcome, 'normal', 'case 1 recorded normal');
    t.equal(v.readerRpps, login.rpps, 'under the reader’s RPPS');
    t.ok(v.timeSpentMs >= 2000, `time spent measured (${v.timeSpentMs} ms)`);
    t.match(await page.locator('#toast').innerText(), /Enregistré : Normal/, 'the toast says what was recorded');
    await page.keyboard.press('Control+z');
    await waitShown(page, cases[0].id);
    t.equal((await caseOf(0)).verdict, null, 'undo: the verdict is withdrawn');
    t.ok(await page.locator('#toast').isHidden(), 'the toast is gone');
    await normalActive(page);
    await page.keyboard.press('n');
    await waitShown(page, cases[1].id);
    t.equal((await caseOf(0)).verdict?.outcome, 'normal', 'recorded again');
  });

  await t.test('P: positive, right breast ACR 4, QSE, mass', async (t) => {
    await page.keyboard.press('p');
    await page.keyboard.press('4');
    await page.keyboard.press('m');
    await page.keyboard.press('l');
    await page.keyboard.type('QSE');
    await settle(page);
    await page.screenshot({ path: join(SHOTS, 'screening-worklist.png') });
    await page.keyboard.press('Enter');
    await waitShown(page, cases[2].id);
    const v = (await caseOf(1)).verdict!;
    t.equal(v.outcome, 'positive');
    t.same(v.right, { acr: 4, location: 'QSE', signs: ['mass'] }, 'the finding as typed');
  });

  await t.test('T: technical recall naming the views to redo', async (t) => {
    // the viewports are kept from case to case: each view mirrored as its own orientation says, none left over from the case before
    const flips = (await page.evaluate(() => (window as unknown as W).__screening.cells())).map((c) => (c as { flipHorizontal?: boolean }).flipHorizontal);
    t.same(flips, [true, false, true, false, false, false, false, false], 'the unmirrored right views (current RCC, RMLO) flipped, the others not');
    await page.keyboard.press('t');
    await page.keyboard.press('1');
    await page.keyboard.press('4');
    await page.keyboard.press('Enter');
    await waitShown(page, cases[3].id);
    t.same((await page.evaluate(() => (window as unknown as W).__screening.cells())).map((c) => (c as { flipHorizontal?: boolean }).flipHorizontal), Array(8).fill(false), 'the next case: no flip left over');
    const v = (await caseOf(2)).verdict!;
    t.equal(v.outcome, 'technical-recall');
    t.same(v.viewsToRedo, ['R-CC', 'L-MLO']);
  });

  await t.test('a second verdict is refused (409); the worklist offers to amend, and the amendment is stored', async (t) => {
    const again = await api('POST', `/api/screening/batches/${batchId}/cases/${cases[1].id}/verdict`, { requestId: randomUUID(), quality: 'adequate', result: 'normal', timeSpentMs: 1000 });
    t.equal(again.status, 409, `a new verdict on a read case: ${again.status} ${again.text.slice(0, 200)}`);
    await page.keyboard.press('ArrowLeft');
    await waitShown(page, cases[2].id);
    await page.keyboard.press('ArrowLeft');
    await waitShown(page, cases[1].id);
    t.match(await page.locator('#recorded').innerText(), /Positif — sein droit ACR 4, QSE, masse/, 'the recorded verdict is shown');
    await page.waitForTimeout(2100); // past the 2 s guard: N would record, were the case not read
    await page.keyboard.press('n');
    t.match(await page.locator('#problem').innerText(), /déjà enregistré.*modifiez/, 'N on a read case: amend instead');
    t.equal((await caseOf(1)).verdict?.outcome, 'positive', 'unchanged');
    await page.keyboard.press('a');
    await page.keyboard.press('c'); // calcifications, on the right breast of the verdict
    await page.keyboard.press('Enter');
    await page.waitForSelector('#recorded', { timeout: 10_000 });
    const v = (await caseOf(1)).verdict!;
    t.same(v.right?.signs, ['mass', 'calcifications'], 'amended: calcifications added');
    t.ok(v.amendedAt, 'the amendment is dated');
    t.match(await page.locator('#recorded').innerText(), /calcifications/);
  });

  await t.test('results exported as CSV from the batches page', async (t) => {
    await page.goto(`${userUrl}/viewer/screening.html`);
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.click(`tr.batch[data-batch="${batchId}"] a[download]`)]);
    const rows = parse(readFileSync(await dl.path()), { columns: true, delimiter: ';', bom: true }) as Record<string, string>[];
    t.equal(rows.length, 4, 'one row per case');
    const row = (i: number) => rows.find((r) => r.accessionNumber === PATIENTS[i].accession) ?? {};
    t.equal(row(0).outcome, 'normal', 'case 1: normal');
    t.match(row(1), { outcome: 'positive', rightAcr: '4', rightLocation: 'QSE' }, 'case 2: positive, right breast ACR 4 in the QSE');
    t.match(row(1).rightSigns, /mass.*calcifications/, 'with the amended signs');
    t.ok(row(1).amendedAt, 'and the amendment’s date');
    t.match(row(2), { outcome: 'technical-recall', quality: 'insufficient' }, 'case 3: technical recall');
    t.match(row(2).viewsToRedo, /R-CC.*L-MLO/, 'naming the views to redo');
    t.equal(row(3).outcome, '', 'case 4: not read');
    t.equal(row(0).readerRpps, login.rpps, 'the reader’s RPPS');
    t.ok(Number(row(0).timeSpentMs) >= 2000, `the time spent (${row(0).timeSpentMs} ms)`);
  });

  await t.test('CPU rendering path: the worklist hangs the 8 views; next case on cached images', async (t) => {
    const cpu = await newContext('cpu', sessionId, userUrl);
    t.teardown(async () => { await cpu.context.close(); rmSync(cpu.dir, { recursive: true, force: true }); });
    await cpu.page.goto(`${userUrl}/viewer/screening.html?batch=${batchId}&render=cpu`);
    await waitShown(cpu.page, cases[3].id); // the first case still to read
    t.equal(await cpu.page.evaluate(() => (window as unknown as W).__screening.renderPath), 'cpu');
    const cells = await cpu.page.evaluate(() => (window as unknown as W).__screening.cells());
    t.ok(cells.length === 8 && cells.every((c) => c.rendered && !c.error), 'the 8 views drawn on the CPU path');
    for (const id of [cases[2].id, cases[1].id, cases[0].id]) { await cpu.page.keyboard.press('PageUp'); await waitShown(cpu.page, id); }
    const m = await measureNextCaseInPage(cpu.page, 3);
    t.ok(m.samples.every((x) => x > 0 && x < 5000), `next case, cached, CPU path: ${m.samples.join(', ')} ms (median ${m.median}, p95 ${m.p95})`);
    console.log(JSON.stringify({ event: 'screening-next-case', render: 'cpu', ...m }));

    // the last case deferred: not without its reason
    t.equal(await shown(cpu.page), cases[3].id);
    await cpu.page.keyboard.press('d');
    await cpu.page.keyboard.press('Enter');
    t.match(await cpu.page.locator('#problem').innerText(), /motif/, 'D then Entrée without a reason: the panel asks for it');
    t.equal((await api('GET', `/api/screening/batches/${batchId}`)).json.cases.find((c: CaseDoc) => c.id === cases[3].id).deferral, null, 'nothing recorded');
    await cpu.page.keyboard.press('3');
    await cpu.page.keyboard.press('Enter');
    await cpu.page.waitForFunction(() => /Différé : Antériorités attendues/.test(document.getElementById('toast')?.textContent ?? ''), null, { timeout: 10_000 });
    const deferred = (await api('GET', `/api/screening/batches/${batchId}`)).json.cases.find((c: CaseDoc) => c.id === cases[3].id);
    t.match(deferred.deferral, { reason: 'priors-awaited' }, 'deferred with its reason');
  });

  t.same(pageErrors, [], 'no uncaught page errors');
});
