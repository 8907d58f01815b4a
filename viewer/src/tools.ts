// Cornerstone's tools: window/level, zoom, pan and wheel scrolling on the mouse, the measurements and
// annotations, magnifier, reference lines, cine, and the comparison's links. Not needed to show the
// first images, so app.ts loads this module after them (it is a separate chunk: less script to
// evaluate before the first image).
import { Enums, eventTarget, getRenderingEngine, utilities as csUtils, type StackViewport } from '@cornerstonejs/core';
import {
  init as toolsInit, addTool, ToolGroupManager, StackScrollTool, WindowLevelTool, ZoomTool, PanTool,
  LengthTool, AngleTool, CobbAngleTool, EllipticalROITool, RectangleROITool, ProbeTool, BidirectionalTool,
  ArrowAnnotateTool, MagnifyTool, ReferenceLinesTool, AnnotationTool,
  Enums as ToolEnums, synchronizers, SynchronizerManager, store, annotation, utilities,
} from '@cornerstonejs/tools';
import { ENGINE_ID } from './cs.js';
import { SliceSync } from './slice-sync.js';
import { measureLines, MEASURE_TOOLS } from './measure-text.js';
import { t } from './i18n.js';

export { mountMeasurements } from './measurements.js';

const TOOL_GROUP_ID = 'drimbox-tools';

export const TOOL_NAMES = {
  wl: WindowLevelTool.toolName,
  zoom: ZoomTool.toolName,
  pan: PanTool.toolName,
  scroll: StackScrollTool.toolName,
  ...MEASURE_TOOLS,
  magnify: MagnifyTool.toolName,
} as const;
export type ToolKey = keyof typeof TOOL_NAMES;

const MEASURE_CLASSES = [LengthTool, AngleTool, CobbAngleTool, EllipticalROITool, RectangleROITool, ProbeTool, BidirectionalTool, ArrowAnnotateTool];
const askText = (done: (text: string | null) => void) => done(prompt(t.arrowPrompt));

/** The image of a stack target ("imageId:<id>"): it tells whether its mm are at the detector. */
function stackImageId(target?: string | string[]): string | undefined {
  const id = Array.isArray(target) ? target[0] : target;
  return typeof id === 'string' && id.startsWith('imageId:') ? id.slice(8) : undefined;
}

/** Sets the tools up on every viewport of the engine, those there now and those made later. */
export function initTools(): void {
  toolsInit();
  for (const tool of [StackScrollTool, WindowLevelTool, ZoomTool, PanTool, MagnifyTool, ReferenceLinesTool, ...MEASURE_CLASSES]) addTool(tool);
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP_ID)!;
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, MagnifyTool]) group.addTool(tool.toolName);
  // every measurement label in French, from Cornerstone's own statistics
  for (const tool of MEASURE_CLASSES) {
    group.addTool(tool.toolName, {
      // a stack's target is "imageId:<id>": the image tells whether its mm are at the detector
      // (the rectangle tool passes a list of targets)
      getTextLines: (data: never, target?: string | string[]) => measureLines(tool.toolName, data, stackImageId(target)),
      ...(tool === ArrowAnnotateTool ? { getTextCallback: askText, changeTextCallback: (_d: unknown, _e: unknown, done: (s: string | null) => void) => askText(done) } : {}),
    });
    // passive: drawn measurements can be selected, moved and deleted whichever tool is on the left button
    group.setToolPassive(tool.toolName);
  }
  group.addTool(ReferenceLinesTool.toolName);
  const { MouseBindings } = ToolEnums;
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  // the viewports made before the tools: given the input listeners toolsInit gives each new one
  for (const vp of getRenderingEngine(ENGINE_ID)?.getViewports() ?? []) {
    store.addEnabledElement(new CustomEvent('enabled', { detail: { element: vp.element, viewportId: vp.id, renderingEngineId: ENGINE_ID } }) as never);
    group.addViewport(vp.id, ENGINE_ID);
  }
  eventTarget.addEventListener(Enums.Events.ELEMENT_ENABLED, ((e: CustomEvent<{ viewportId: string; renderingEngineId: string; element: HTMLDivElement }>) => {
    // the MPR's volume viewports have their own tool group
    if (e.detail.renderingEngineId === ENGINE_ID && !e.detail.element.dataset.mpr) group.addViewport(e.detail.viewportId, ENGINE_ID);
  }) as EventListener);
}

let primary: ToolKey = 'wl';
export function setPrimaryTool(key: ToolKey): void {
  const group = ToolGroupManager.getToolGroup(TOOL_GROUP_ID)!;
  if (key === primary) return;
  // passive: a measurement tool left this way keeps its drawings selectable and movable
  group.setToolPassive(TOOL_NAMES[primary]);
  group.setToolActive(TOOL_NAMES[key], { bindings: [{ mouseButton: ToolEnums.MouseBindings.Primary }] });
  primary = key;
}
export const primaryTool = () => primary;

/** Deletes the selected measurements (undoable). Returns how many. */
export function deleteSelected(): number {
  const uids = annotation.selection.getAnnotationsSelected();
  for (const uid of uids) {
    const a = annotation.state.getAnnotation(uid);
    if (!a) continue;
    const vp = (getRenderingEngine(ENGINE_ID)?.getViewports() as StackViewport[] | undefined)?.find((v) => v.getImageIds?.().includes(a.metadata?.referencedImageId ?? ''));
    AnnotationTool.createAnnotationMemo((vp?.element ?? null) as HTMLDivElement | null, a, { deleting: true });
    annotation.state.removeAnnotation(uid);
  }
  renderAll();
  return uids.length;
}

export function selectOnly(uid: string): void { annotation.selection.setAnnotationSelected(uid, true, false); }

/** Every measurement with its French text (for the tests and support view). */
export function listMeasurements(): { uid: string; tool: string; imageId?: string; lines: string[] }[] {
  return annotation.state.getAllAnnotations()
    .filter((a) => (Object.values(MEASURE_TOOLS) as string[]).includes(a.metadata?.toolName ?? ""))
    .map((a) => ({ uid: a.annotationUID ?? '', tool: a.metadata?.toolName ?? '', imageId: a.metadata?.referencedImageId, lines: measureLines(a.metadata?.toolName ?? '', a.data as never, a.metadata?.referencedImageId) }));
}

export function undo(): void { csUtils.HistoryMemo.DefaultHistoryMemo.undo(); renderAll(); }
export function redo(): void { csUtils.HistoryMemo.DefaultHistoryMemo.redo(); renderAll(); }

function renderAll(): void {
  const ids = getRenderingEngine(ENGINE_ID)?.getViewports().map((v) => v.id) ?? [];
  utilities.triggerAnnotationRenderForViewportIds(ids);
}

// Cine: Cornerstone's clip player on the active viewport.
let cineElement: HTMLDivElement | undefined;
export let cineFps = 10;
export function playCine(element: HTMLDivElement, fps = cineFps): void {
  stopCine();
  cineFps = Math.max(1, Math.min(60, fps));
  utilities.cine.playClip(element, { framesPerSecond: cineFps, loop: true });
  cineElement = element;
}
export function stopCine(): void {
  if (cineElement) utilities.cine.stopClip(cineElement);
  cineElement = undefined;
}
export const cinePlaying = () => !!cineElement;

/** Reference lines: the active viewport's plane drawn on the others (same frame of reference). */
let refLines = false;
export function setReferenceLines(on: boolean, sourceViewportId?: string): void {
  const group = ToolGroupManager.getToolGroup(TOOL_GROUP_ID)!;
  refLines = on;
  if (on && sourceViewportId) {
    group.setToolConfiguration(ReferenceLinesTool.toolName, { sourceViewportId });
    group.setToolEnabled(ReferenceLinesTool.toolName);
  } else group.setToolDisabled(ReferenceLinesTool.toolName);
  renderAll();
}
export const referenceLinesOn = () => refLines;

// Comparison: zoom/pan linked both ways by Cornerstone's synchronizer; slices by SliceSync (two-way,
// led by the viewport the user works in), when the stacks are coplanar.
const ZOOM_SYNC = 'drimbox-zoom-sync';
let zoomSyncs: string[] = [];
let slices: SliceSync | undefined;
export function syncViewports(ids: string[], coplanar: boolean, active: () => string | undefined): void {
  unsync();
  linkZoomPan([ids]);
  if (coplanar) slices = new SliceSync(ENGINE_ID, ids, active);
}
/** Links zoom and pan within each group of viewports (mammography: each view with its prior). */
export function linkZoomPan(groups: string[][]): void {
  for (const ids of groups) {
    const id = `${ZOOM_SYNC}-${zoomSyncs.length}`;
    const zoom = synchronizers.createZoomPanSynchronizer(id);
    for (const vp of ids) zoom.add({ renderingEngineId: ENGINE_ID, viewportId: vp });
    zoomSyncs.push(id);
  }
}
export function unsync(): void {
  for (const id of zoomSyncs) if (SynchronizerManager.getSynchronizer(id)) SynchronizerManager.destroySynchronizer(id);
  zoomSyncs = [];
  slices?.destroy();
  slices = undefined;
}
export const isSynced = () => zoomSyncs.length > 0;
