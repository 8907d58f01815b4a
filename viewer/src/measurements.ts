// The side panel of measurements and annotations: grouped by series, each line jumps to its image,
// the selected one can be deleted, and the last change undone (Cornerstone's annotation state and
// history; this panel only lists them).
import { eventTarget } from '@cornerstonejs/core';
import { annotation, Enums as ToolEnums } from '@cornerstonejs/tools';
import { measureLines, calibrationNote } from './measure-text.js';
import { el } from './panels.js';
import { t } from './i18n.js';

export interface MeasurementHost {
  /** the series and the image number of an image, or undefined when it is not one of the session's */
  describe(imageId: string): { seriesUid: string; seriesLabel: string; image: string } | undefined;
  /** shows the image in a viewport */
  jump(imageId: string): void;
  remove(uid: string): void;
  undo(): void;
}

const TOOL_LABELS: Record<string, string> = {
  Length: t.measure.length, Angle: t.measure.angle, CobbAngle: t.measure.cobb, EllipticalROI: t.measure.ellipse,
  RectangleROI: t.measure.rect, Probe: t.measure.probe, Bidirectional: t.measure.bidir, ArrowAnnotate: t.measure.arrow,
};

export function mountMeasurements(root: HTMLElement, host: MeasurementHost): () => void {
  let queued = false;
  const render = () => {
    queued = false;
    const bySeries = new Map<string, { label: string; notes: Set<string>; rows: HTMLElement[] }>();
    const selected = new Set(annotation.selection.getAnnotationsSelected());
    for (const a of annotation.state.getAllAnnotations()) {
      const name = a.metadata?.toolName ?? '';
      const imageId = a.metadata?.referencedImageId;
      if (!TOOL_LABELS[name] || !imageId || !a.annotationUID) continue;
      const where = host.describe(imageId);
      if (!where) continue;
      const g = bySeries.get(where.seriesUid) ?? { label: where.seriesLabel, notes: new Set<string>(), rows: [] };
      bySeries.set(where.seriesUid, g);
      const note = calibrationNote(name, a.data as never, imageId);
      if (note) g.notes.add(note);
      const uid = a.annotationUID;
      const go = el('button', { class: 'measure-go', 'data-uid': uid, 'data-tool': name, title: where.image },
        el('span', { class: 'measure-kind' }, `${TOOL_LABELS[name]} · ${where.image}`),
        el('span', { class: 'measure-value' }, measureLines(name, a.data as never, imageId).join(' · ') || '…'));
      go.onclick = () => { annotation.selection.setAnnotationSelected(uid, true, false); host.jump(imageId); };
      const del = el('button', { class: 'measure-del', title: t.deleteMeasure, 'aria-label': `${t.deleteMeasure} : ${TOOL_LABELS[name]}` }, '✕');
      del.onclick = () => host.remove(uid);
      g.rows.push(el('li', { class: selected.has(uid) ? 'measure selected' : 'measure' }, go, del));
    }
    const undoBtn = el('button', { id: 'measure-undo', class: 'link' }, t.undo);
    undoBtn.onclick = () => host.undo();
    const groups = [...bySeries.values()].map((g) => el('div', { class: 'measure-series' },
      el('h3', {}, g.label), ...[...g.notes].map((n) => el('div', { class: 'measure-note' }, n)), el('ul', {}, ...g.rows)));
    root.replaceChildren(el('h2', {}, t.measuresTitle, ' ', undoBtn), ...(groups.length ? groups : [el('div', { class: 'measure-none' }, t.measuresNone)]));
  };
  const queue = () => { if (!queued) { queued = true; requestAnimationFrame(render); } };
  const E = ToolEnums.Events;
  const events = [E.ANNOTATION_COMPLETED, E.ANNOTATION_MODIFIED, E.ANNOTATION_REMOVED, E.ANNOTATION_SELECTION_CHANGE, E.HISTORY_UNDO, E.HISTORY_REDO];
  for (const e of events) eventTarget.addEventListener(e, queue);
  render();
  return queue;
}
