// next_case_ms for bench/screening: in the reading worklist, the time from the "next case" keystroke
// to every current and prior view drawn, the next case's images already cached (the worklist fetches
// them ahead of the reader), on the CPU rendering path (Chromium with the 3D APIs off). Median and
// p95 over `cases` case changes. The e2e test (test/e2e/screening.test.ts) runs the same measure.
import { chromium, type Page } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, chromiumArgs } from '../test/e2e/helpers/chromium.js';
import { ensureViewerBuilt } from '../test/e2e/helpers/viewer-build.js';
import { SESSION_COOKIE } from '../gateway/src/trust/sessions.js';

/** ms; `phases`: per case change, until the case's data was ready, the images placed, then drawn */
export interface NextCaseMs { median: number; p95: number; samples: number[]; phases: unknown[] }

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

type Screening = { index: number; caseId?: string; shownCase?: string; count: number; nextCaseMs: number[]; phases: unknown[]; isCached(i: number): boolean; prefetchIdle(): boolean };

/** On a worklist page showing its first case: `cases` times → (the next case cached first), keystroke to drawn. */
export async function measureNextCaseInPage(page: Page, cases: number): Promise<NextCaseMs> {
  const samples: number[] = [];
  await page.waitForFunction(() => { const s = (window as unknown as { __screening: Screening }).__screening; return s?.shownCase !== undefined && s.shownCase === s.caseId; }, null, { timeout: 60_000 });
  for (let k = 0; k < cases; k++) {
    const at = await page.evaluate(() => { const s = (window as unknown as { __screening: Screening }).__screening; return { index: s.index, count: s.count, before: s.nextCaseMs.length }; });
    if (at.index + 1 >= at.count) throw new Error(`the batch has ${at.count} cases: ${cases + 1} are needed for ${cases} case changes`);
    // the reader has spent a while on the case: the cases fetched ahead are in the cache, nothing decodes meanwhile
    await page.waitForFunction((i) => { const s = (window as unknown as { __screening: Screening }).__screening; return s.isCached(i) && s.prefetchIdle(); }, at.index + 1, { timeout: 60_000 });
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction((n) => { const s = (window as unknown as { __screening: Screening }).__screening; return s.shownCase !== undefined && s.shownCase === s.caseId && s.nextCaseMs.length > n; }, at.before, { timeout: 60_000 });
    samples.push(await page.evaluate(() => { const s = (window as unknown as { __screening: Screening }).__screening; return s.nextCaseMs[s.nextCaseMs.length - 1]; }));
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const phases = await page.evaluate((n) => (window as unknown as { __screening: Screening }).__screening.phases.slice(-n), cases);
  return { median: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), samples, phases };
}

/** Opens the worklist of `batchId` on the box at `userUrl` as the PSC session `sessionId`, CPU rendering, and measures. */
export async function measureNextCase(o: { userUrl: string; sessionId: string; batchId: string; cases?: number }): Promise<NextCaseMs> {
  ensureViewerBuilt(fileURLToPath(new URL('..', import.meta.url)));
  const dir = mkdtempSync(join(tmpdir(), 'bench-screening-chromium-'));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: chromiumArgs('cpu'), ignoreHTTPSErrors: true, viewport: { width: 1920, height: 1080 } });
  try {
    await context.addCookies([{ name: SESSION_COOKIE, value: o.sessionId, url: o.userUrl }]);
    const page = context.pages()[0] ?? await context.newPage();
    await page.goto(`${o.userUrl}/viewer/screening.html?batch=${encodeURIComponent(o.batchId)}&render=cpu`);
    return await measureNextCaseInPage(page, o.cases ?? 20);
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
