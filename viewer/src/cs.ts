// Cornerstone3D set-up: rendering path (WebGL2 or CPU fallback), image loader, tools, presets.
import { init as coreInit, RenderingEngine, setUseCPURendering, metaData, getWebWorkerManager } from '@cornerstonejs/core';
import { init as loaderInit, wadors } from '@cornerstonejs/dicom-image-loader';
import { decodeWorker } from './decode-worker.js';
import { SliceSync } from './slice-sync.js';
import {
  init as toolsInit, addTool, ToolGroupManager, StackScrollTool, WindowLevelTool, ZoomTool, PanTool,
  Enums as ToolEnums, synchronizers, SynchronizerManager,
} from '@cornerstonejs/tools';

export const ENGINE_ID = 'drimbox-engine';
/** frames as stored, single part; multipart accepted too, from servers without single part answers */
const FRAME_ACCEPT = 'application/octet-stream; transfer-syntax=*, multipart/related; type="application/octet-stream"; transfer-syntax=*; q=0.9';
export const TOOL_GROUP_ID = 'drimbox-tools';

/** True when the browser can give us a WebGL2 context (SwiftShader counts); otherwise CPU rendering. */
export function hasWebGL2(): boolean {
  try {
    const c = document.createElement('canvas');
    return !!c.getContext('webgl2');
  } catch {
    return false;
  }
}

export interface Rendering { engine: RenderingEngine; cpu: boolean }

/**
 * The cheap half of the set-up: core and image loader, so images can be requested and decoded while
 * the expensive half (initRendering: WebGL context, tools) runs.
 */
export function initImaging(forceCpu = false): { cpu: boolean } {
  const cpu = forceCpu || !hasWebGL2();
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
  toolsInit();
  for (const tool of [StackScrollTool, WindowLevelTool, ZoomTool, PanTool]) addTool(tool);
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP_ID)!;
  group.addTool(WindowLevelTool.toolName);
  group.addTool(PanTool.toolName);
  group.addTool(ZoomTool.toolName);
  group.addTool(StackScrollTool.toolName);
  const { MouseBindings } = ToolEnums;
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
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

export const TOOL_NAMES = {
  wl: WindowLevelTool.toolName,
  zoom: ZoomTool.toolName,
  pan: PanTool.toolName,
  scroll: StackScrollTool.toolName,
} as const;
export type ToolKey = keyof typeof TOOL_NAMES;

let primary: ToolKey = 'wl';
export function setPrimaryTool(key: ToolKey): void {
  const group = ToolGroupManager.getToolGroup(TOOL_GROUP_ID)!;
  if (key === primary) return;
  group.setToolPassive(TOOL_NAMES[primary]);
  group.setToolActive(TOOL_NAMES[key], { bindings: [{ mouseButton: ToolEnums.MouseBindings.Primary }] });
  primary = key;
}
export const primaryTool = () => primary;

export function addToToolGroup(viewportId: string): void {
  ToolGroupManager.getToolGroup(TOOL_GROUP_ID)!.addViewport(viewportId, ENGINE_ID);
}

/** Window presets (width, centre) in modality units. */
export const PRESETS: Record<string, { ww: number; wc: number } | null> = {
  default: null,
  soft: { ww: 400, wc: 40 },
  lung: { ww: 1500, wc: -600 },
  bone: { ww: 2000, wc: 300 },
  mammo: { ww: 2600, wc: 2200 },
};

// Comparison: zoom/pan linked both ways by Cornerstone's synchronizer; slices by SliceSync (two-way,
// led by the viewport the user works in), when the stacks are coplanar.
const ZOOM_SYNC = 'drimbox-zoom-sync';
let slices: SliceSync | undefined;
export function syncViewports(ids: string[], coplanar: boolean, active: () => string | undefined): void {
  unsync();
  const zoom = synchronizers.createZoomPanSynchronizer(ZOOM_SYNC);
  for (const id of ids) zoom.add({ renderingEngineId: ENGINE_ID, viewportId: id });
  if (coplanar) slices = new SliceSync(ENGINE_ID, ids, active);
}
export function unsync(): void {
  if (SynchronizerManager.getSynchronizer(ZOOM_SYNC)) SynchronizerManager.destroySynchronizer(ZOOM_SYNC);
  slices?.destroy();
  slices = undefined;
}
export const isSynced = () => !!SynchronizerManager.getSynchronizer(ZOOM_SYNC);
