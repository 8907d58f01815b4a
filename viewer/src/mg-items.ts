// The MG images of a study as hanging items (one per image, with its view and laterality), and their
// placement in a viewport grid by hanging.ts's slots: shared by the viewer and the screening worklist.
import type { Series } from './dicomweb.js';
import type { Grid } from './grid.js';
import { mgInfo } from './mg-info.js';
import { mgFlips, type MgImageInfo, type Slot } from './hanging.js';

export interface MgItem { info: MgImageInfo; series: Series; imageId: string }

export function mgItems(series: Series[]): MgItem[] {
  const out: MgItem[] = [];
  for (const s of series) if (s.modality === 'MG') for (const inst of s.instances) {
    // one viewport per image: a one-image "series" view of the stack
    out.push({ info: mgInfo(inst.meta), series: { ...s, instances: [inst], imageIds: [inst.imageId] }, imageId: inst.imageId });
  }
  return out;
}

/** A study with several lateralised MG images opens in the four-view hanging. */
export const hangsAsMammo = (mg: MgItem[]) => mg.length >= 2 && mg.some((m) => m.info.laterality);

/**
 * Shows each slot's image in the grid cell of the same index, mirrored by the convention; an empty slot
 * says which view is missing. `reuse` (the worklist, case after case): a cell showing an image keeps its
 * viewport, reset, since making a new one resizes the rendering context and redraws every other viewport.
 */
export async function showSlots(grid: Grid, slots: Slot<MgItem>[], reuse = false): Promise<void> {
  await Promise.all(slots.map(async (slot, i) => {
    const keep = reuse && !!slot.item && !!grid.cells[i]?.shown;
    if (!keep) grid.clear(i);
    if (!slot.item) { grid.cells[i].overlays.label.textContent = slot.label; grid.setMessage(grid.cells[i], `${slot.label} : —`); return; }
    await grid.show(i, slot.item.series, { ...mgFlips(slot.item.info), label: slot.label, resetView: keep });
  }));
}
