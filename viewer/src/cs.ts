// Cornerstone3D set-up: rendering path (WebGL2 or CPU fallback), image loader, window presets.
// (The tools are in tools.ts, loaded after the first images.)
import { init as coreInit, RenderingEngine, setUseCPURendering, metaData, getWebWorkerManager, getRenderingCapabilities } from '@cornerstonejs/core';
import { init as loaderInit, wadors } from '@cornerstonejs/dicom-image-loader';
import { decodeWorker } from './decode-worker.js';

export const ENGINE_ID = 'drimbox-engine';
/** frames as stored, single part; multipart accepted too, from servers without single part answers */
const FRAME_ACCEPT = 'application/octet-stream; transfer-syntax=*, multipart/related; type="application/octet-stream"; transfer-syntax=*; q=0.9';

/** images about to be drawn, not yet requested: their request is marked urgent */
const urgent = new Set<string>();
export const markUrgent = (imageId: string): void => { urgent.add(imageId); };

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
  // an image a viewport is about to draw says so (RFC 9218 urgency 0): the box fetches it ahead of its series
  loaderInit({ maxWebWorkers, beforeSend: (_xhr: unknown, imageId: string) => (urgent.delete(imageId) ? { Accept: FRAME_ACCEPT, Priority: 'u=0' } : { Accept: FRAME_ACCEPT }) } as never);
  metaData.addProvider(saneWindowProvider, 10000);
  metaData.addProvider(detectorSpacingProvider, 10000);
  return { cpu };
}

export function initRendering({ cpu }: { cpu: boolean }): Rendering {
  return { engine: new RenderingEngine(ENGINE_ID), cpu };
}

/** images whose measurements are in mm at the detector (Imager Pixel Spacing): their labels say so */
const detectorCalibrated = new Set<string>();
export const isDetectorCalibrated = (imageId: string) => detectorCalibrated.has(imageId);

/**
 * Projection images (mammography, radiography) often carry only Imager Pixel Spacing (0018,1164): the
 * pixel size at the detector, larger than at the object by the magnification. The image loader ignores
 * it (measurements in px); it is used here so lengths are in mm, labelled "au plan du détecteur".
 */
function detectorSpacingProvider(type: string, imageId: string): unknown {
  if (type !== 'imagePlaneModule' || !imageId.startsWith('wadors:')) return undefined;
  const meta = wadors.metaDataManager.get(imageId) as Record<string, { Value?: unknown[] }> | undefined;
  const ips = meta?.['00181164']?.Value?.map(Number);
  if (!meta || meta['00280030']?.Value?.length || !ips || ips.length < 2 || !ips.every((v) => v > 0)) return undefined;
  const base = wadors.metaData.metaDataProvider(type, imageId) as Record<string, unknown> | undefined;
  if (!base) return undefined;
  detectorCalibrated.add(imageId);
  return { ...base, pixelSpacing: ips, rowPixelSpacing: ips[0], columnPixelSpacing: ips[1], usingDefaultValues: false };
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
