// Cornerstone3D set-up: rendering path (WebGL2 or CPU fallback), image loader, window presets.
// (The tools are in tools.ts, loaded after the first images.)
import { init as coreInit, RenderingEngine, setUseCPURendering, metaData, getWebWorkerManager, getRenderingCapabilities } from '@cornerstonejs/core';
import { init as loaderInit, wadors } from '@cornerstonejs/dicom-image-loader';
import { decodeWorker } from './decode-worker.js';

export const ENGINE_ID = 'drimbox-engine';
/** frames as stored, single part; multipart accepted too, from servers without single part answers */
const FRAME_ACCEPT = 'application/octet-stream; transfer-syntax=*, multipart/related; type="application/octet-stream"; transfer-syntax=*; q=0.9';

export interface Rendering { engine: RenderingEngine; cpu: boolean }

/**
 * The cheap half of the set-up: core and image loader, so images can be requested and decoded while
 * the expensive half (initRendering: the rendering engine and its WebGL context) runs.
 */
export function initImaging(forceCpu = false): { cpu: boolean } {
  // Cornerstone probes the browser once (its init reads the same cached answer): SwiftShader counts as WebGL2
  const cpu = forceCpu || !getRenderingCapabilities().webgl2;
  // one WebGL context for every viewport: each context compiles its shaders and sizes its own canvas,
  // which costs more than the parallelism it buys for 2D stacks (measured on SwiftShader)
  coreInit({ rendering: { useCPURendering: cpu, webGlContextCount: 1 } } as never);
  if (cpu) setUseCPURendering(true, false);
  const maxWebWorkers = Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1));
  // the decode worker the entry started (loaderInit keeps a registration made before it, with a warning)
  getWebWorkerManager().registerWorker('dicomImageLoader', decodeWorker, { maxWorkerInstances: maxWebWorkers });
  // each frame single part: Cornerstone scans a multipart body for its boundary on the main thread
  loaderInit({ maxWebWorkers, beforeSend: () => ({ Accept: FRAME_ACCEPT }) });
  metaData.addProvider(saneWindowProvider, 10000);
  return { cpu };
}

export function initRendering({ cpu }: { cpu: boolean }): Rendering {
  return { engine: new RenderingEngine(ENGINE_ID), cpu };
}

/**
 * Some files carry WindowWidth 0 (or negative): rendered as is, the image is black. Hide such a
 * window so Cornerstone falls back to the image's own pixel range.
 */
function saneWindowProvider(type: string, imageId: string): unknown {
  if (type !== 'voiLutModule' || !imageId.startsWith('wadors:')) return undefined;
  const mod = wadors.metaData.metaDataProvider(type, imageId) as { windowWidth?: number | number[] } | undefined;
  const ww = mod?.windowWidth;
  const widths = ww === undefined ? [] : Array.isArray(ww) ? ww : [ww];
  if (!widths.length || widths.every((w) => Number(w) > 0)) return undefined;
  return { ...mod, windowCenter: undefined, windowWidth: undefined };
}

/** Window presets (width, centre) in modality units. */
export const PRESETS: Record<string, { ww: number; wc: number } | null> = {
  default: null,
  soft: { ww: 400, wc: 40 },
  lung: { ww: 1500, wc: -600 },
  bone: { ww: 2000, wc: 300 },
  mammo: { ww: 2600, wc: 2200 },
};
