// What the viewer page tells its tests about its viewport cells (window.__viewer, set by viewer/src/app.ts).
import type { Page } from 'playwright-core';

export interface CellInfo {
  index: number;
  label: string;
  studyUid?: string;
  seriesUid?: string;
  imageIndex?: number;
  count?: number;
  flipHorizontal: boolean;
  rendered: boolean;
  voi?: { lower: number; upper: number };
  zoom?: number;
  laterality?: string;
  error?: string;
}

export const cells = (page: Page) => page.evaluate(() => (window as unknown as { __viewer: { cells(): unknown[] } }).__viewer.cells()) as Promise<CellInfo[]>;

/** The mouse tools (window/level, zoom, pan, wheel scrolling) load after the first images: wait for them. */
export const toolsReady = (page: Page) => page.waitForSelector('body[data-tools="ready"]', { state: 'attached', timeout: 10_000 });
