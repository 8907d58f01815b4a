// MPR: the series as a volume in three Cornerstone volume viewports (axial, sagittal, coronal, 1×3)
// linked by Cornerstone's crosshairs. Its own lazily loaded chunk: only who opens it pays for it.
import { Enums, volumeLoader, setVolumesForViewports, cache, type RenderingEngine, type Types } from '@cornerstonejs/core';
import { ToolGroupManager, addTool, CrosshairsTool, StackScrollTool, ZoomTool, PanTool, WindowLevelTool, Enums as ToolEnums, state as toolState } from '@cornerstonejs/tools';
import { ENGINE_ID } from './cs.js';
import { t } from './i18n.js';

const GROUP = 'drimbox-mpr';
const PLANES = [Enums.OrientationAxis.AXIAL, Enums.OrientationAxis.SAGITTAL, Enums.OrientationAxis.CORONAL] as const;
export interface Mpr { viewportIds: string[]; volumeId: string; close(): void }

let seq = 0;

/** Shows `imageIds` (a checked, regular stack) in three planes inside `host`. */
export async function openMpr(host: HTMLElement, engine: RenderingEngine, imageIds: string[], onClose: () => void): Promise<Mpr> {
  const n = ++seq;
  const volumeId = `cornerstoneStreamingImageVolume:drimbox-mpr-${n}`;
  const viewportIds = PLANES.map((p) => `mpr-${p}-${n}`);
  const cells = PLANES.map((p, i) => {
    const element = document.createElement('div');
    element.className = 'cs';
    element.dataset.mpr = p;
    element.oncontextmenu = (e) => e.preventDefault();
    const label = document.createElement('div');
    label.className = 'ov ov-label';
    label.textContent = t.mprPlanes[p];
    const cell = document.createElement('div');
    cell.className = 'cell loaded';
    cell.dataset.mprPlane = p;
    cell.append(element, label);
    return { element, cell, id: viewportIds[i], plane: p };
  });
  const close = document.createElement('button');
  close.id = 'mpr-close';
  close.textContent = t.mprClose;
  const grid = document.createElement('div');
  grid.className = 'mpr-grid';
  grid.append(...cells.map((c) => c.cell));
  host.replaceChildren(close, grid);
  host.hidden = false;
  for (const c of cells) {
    engine.enableElement({
      viewportId: c.id, type: Enums.ViewportType.ORTHOGRAPHIC, element: c.element as HTMLDivElement,
      defaultOptions: { orientation: c.plane, background: [0, 0, 0] as Types.Point3 },
    });
  }
  if (!toolState.tools[CrosshairsTool.toolName]) addTool(CrosshairsTool);
  ToolGroupManager.destroyToolGroup(GROUP);
  const group = ToolGroupManager.createToolGroup(GROUP)!;
  for (const name of [CrosshairsTool.toolName, StackScrollTool.toolName, ZoomTool.toolName, PanTool.toolName, WindowLevelTool.toolName]) group.addTool(name);
  for (const id of viewportIds) group.addViewport(id, ENGINE_ID);
  const { MouseBindings } = ToolEnums;
  group.setToolActive(CrosshairsTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });

  const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds });
  (volume as unknown as { load(): void }).load();
  await setVolumesForViewports(engine, [{ volumeId }], viewportIds);
  engine.renderViewports(viewportIds);

  let closed = false;
  const mpr: Mpr = {
    viewportIds, volumeId,
    close() {
      if (closed) return;
      closed = true;
      ToolGroupManager.destroyToolGroup(GROUP);
      for (const id of viewportIds) engine.disableElement(id);
      cache.removeVolumeLoadObject(volumeId);
      host.replaceChildren();
      host.hidden = true;
      onClose();
    },
  };
  close.onclick = () => mpr.close();
  return mpr;
}
