// Pixel checks on real screenshots: decode the PNG in the page (the browser is the only PNG
// decoder we have), bring back 8-bit gray values, measure in Node.
import type { Page, Locator } from 'playwright-core';

export interface Gray { width: number; height: number; data: Uint8Array }

export async function screenshotGray(page: Page, target: Locator): Promise<Gray & { png: Buffer }> {
  const png = await target.screenshot();
  const res = await page.evaluate(async (b64: string) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = c.getContext('2d')!;
    ctx.drawImage(bmp, 0, 0);
    const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
    const g = new Uint8Array(bmp.width * bmp.height);
    for (let i = 0; i < g.length; i++) g[i] = Math.round(0.299 * d[i * 4] + 0.587 * d[i * 4 + 1] + 0.114 * d[i * 4 + 2]);
    let s = '';
    for (let i = 0; i < g.length; i += 0x8000) s += String.fromCharCode(...g.subarray(i, i + 0x8000));
    return { width: bmp.width, height: bmp.height, b64: btoa(s) };
  }, png.toString('base64'));
  return { width: res.width, height: res.height, data: new Uint8Array(Buffer.from(res.b64, 'base64')), png };
}

export function stats(g: Gray): { mean: number; variance: number } {
  let s = 0, s2 = 0;
  for (const v of g.data) { s += v; s2 += v * v; }
  const n = g.data.length;
  const mean = s / n;
  return { mean, variance: s2 / n - mean * mean };
}

/** Mean absolute difference between two same-size captures. */
export function diff(a: Gray, b: Gray): number {
  if (a.width !== b.width || a.height !== b.height) return Infinity;
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
  return s / a.data.length;
}

export interface Run { start: number; end: number }

/**
 * The burnt-in orientation mark of a synthetic mammogram: the first rows (from the top) holding
 * saturated pixels, read as runs of bright columns across the viewport.
 */
export function markRuns(g: Gray, threshold = 235): { row: number; runs: Run[] } | undefined {
  for (let y = 0; y < g.height; y++) {
    let bright = 0;
    for (let x = 0; x < g.width; x++) if (g.data[y * g.width + x] >= threshold) bright++;
    if (bright >= 4) {
      const row = Math.min(g.height - 1, y + 3); // a few rows into the band, clear of its edge
      const runs: Run[] = [];
      let start = -1;
      for (let x = 0; x <= g.width; x++) {
        const on = x < g.width && g.data[row * g.width + x] >= threshold;
        if (on && start < 0) start = x;
        if (!on && start >= 0) { if (x - start >= 3) runs.push({ start, end: x - 1 }); start = -1; }
      }
      return { row, runs };
    }
  }
  return undefined;
}

/** Screenshot of a viewport; retried until it is not black (a failed decode renders black). */
export async function cellShot(page: Page, index: number, minVariance = 50) {
  const loc = page.locator(`.cell[data-index="${index}"] .cs`);
  let g = await screenshotGray(page, loc);
  for (let i = 0; i < 20 && stats(g).variance < minVariance; i++) {
    await page.waitForTimeout(150);
    g = await screenshotGray(page, loc);
  }
  return g;
}

/** Two animation frames and a short pause: what the viewer drew is on screen. */
export async function settle(page: Page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.waitForTimeout(120);
}
