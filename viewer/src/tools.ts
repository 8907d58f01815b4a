// Cornerstone's tools: window/level, zoom, pan and wheel scrolling on the mouse, and the comparison's
// links. Not needed to show the first images, so app.ts loads this module after them (it is a
// separate chunk: less script to evaluate before the first image).
import { Enums, eventTarget, getRenderingEngine } from '@cornerstonejs/core';
import {
  init as toolsInit, addTool, ToolGroupManager, StackScrollTool, WindowLevelTool, ZoomTool, PanTool,
  Enums as ToolEnums, synchronizers, SynchronizerManager, store,
} from '@cornerstonejs/tools';
import { ENGINE_ID } from './cs.js';
import { SliceSync } from './slice-sync.js';

const TOOL_GROUP_ID = 'drimbox-tools';

export const TOOL_NAMES = {
  wl: WindowLevelTool.toolName,
  zoom: ZoomTool.toolName,
  pan: PanTool.toolName,
  scroll: StackScrollTool.toolName,
} as const;
export type ToolKey = keyof typeof TOOL_NAMES;

/** Sets the tools up on every viewport of the engine, those there now and those made later. */
export function initTools(): void {
  toolsInit();
  for (const tool of [StackScrollTool, WindowLevelTool, ZoomTool, PanTool]) addTool(tool);
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP_ID)!;
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) group.addTool(tool.toolName);
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
  eventTarget.addEventListener(Enums.Events.ELEMENT_ENABLED, ((e: CustomEvent<{ viewportId: string; renderingEngineId: string }>) => {
    if (e.detail.renderingEngineId === ENGINE_ID) group.addViewport(e.detail.viewportId, ENGINE_ID);
  }) as EventListener);
}

let primary: ToolKey = 'wl';
export function setPrimaryTool(key: ToolKey): void {
  const group = ToolGroupManager.getToolGroup(TOOL_GROUP_ID)!;
  if (key === primary) return;
  group.setToolPassive(TOOL_NAMES[primary]);
  group.setToolActive(TOOL_NAMES[key], { bindings: [{ mouseButton: ToolEnums.MouseBindings.Primary }] });
  primary = key;
}
export const primaryTool = () => primary;

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
