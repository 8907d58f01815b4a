// The viewport grid: 1×1 to 3×3 (and 1×3) stack viewports with their text overlays and orientation markers.
import { cache, Enums, eventTarget, type RenderingEngine, type StackViewport, type Types } from '@cornerstonejs/core';
import { middleIndex, type Series } from './dicomweb.js';
import { str, strs, nums } from './dicom-json.js';
import { edgeLabels, rotateLabels, rowColLetters } from './orientation.js';
import { mgInfo } from './mg-info.js';
import { viewLabel } from './hanging.js';
import { t } from './i18n.js';
import { markUrgent } from './cs.js';

/** rows × columns ('2x4': the screening worklist's current over prior, not in the user's list) */
export type Layout = '1x1' | '1x2' | '1x3' | '2x1' | '2x2' | '2x3' | '3x3' | '2x4';
export const LAYOUTS: Layout[] = ['1x1', '1x2', '1x3', '2x1', '2x2', '2x3', '3x3'];
const dims = (l: Layout) => l.split('x').map(Number) as [number, number];
/** attempts at loading the shown image before the cell reports the failure */
const SHOW_ATTEMPTS = 3;

export interface ShowOptions {
  flipHorizontal?: boolean; flipVertical?: boolean; rotation?: number; label?: string; index?: number; voi?: { ww: number; wc: number };
  /** the cell's viewport showed another image: its window, zoom, pan and flips are reset instead of a new viewport being made (see reuse in mg-items.ts) */
  resetView?: boolean;
}

export interface Cell {
  index: number;
  viewportId: string;
  root: HTMLDivElement;
  element: HTMLDivElement;
  series?: Series;
  options: ShowOptions;
  overlays: Record<'tl' | 'tr' | 'bl' | 'br' | 'top' | 'bottom' | 'left' | 'right' | 'msg' | 'label', HTMLDivElement>;
  /** when the cell first drew its image as shown (orientation, window): set by the render after show() */
  firstRenderAt?: number;
  /** show() has put the image in place: a render before that (an empty or failed stack) does not count */
  shown?: boolean;
  error?: string;
}

const fmtDate = (d?: string) => (d && d.length === 8 ? `${d.slice(6, 8)}/${d.slice(4, 6)}/${d.slice(0, 4)}` : d ?? '');
const frLetters = (s: string) => s.split('').map((c) => t.orientation[c] ?? c).join('');

export class Grid {
  cells: Cell[] = [];
  layout: Layout = '1x1';
  active = 0;
  showOverlays = true;
  private seq = 0;

  constructor(
    private readonly container: HTMLElement,
    private readonly engine: RenderingEngine,
    private readonly onDropSeries: (cell: number, seriesUid: string) => void,
    private readonly onActivate: (cell: number) => void,
  ) {
    eventTarget.addEventListener(Enums.Events.IMAGE_LOAD_ERROR, ((e: CustomEvent) => {
      const imageId = (e.detail as { imageId?: string }).imageId;
      for (const c of this.cells) if (imageId && c.series?.imageIds.includes(imageId)) this.setMessage(c, t.errors.image);
    }) as EventListener);
  }

  get size(): number { const [r, c] = dims(this.layout); return r * c; }

  setLayout(layout: Layout): void {
    const keep = this.cells.map((c) => ({ series: c.series, options: { ...c.options, ...this.presentation(c.index), index: c.series ? this.viewport(c.index)?.getCurrentImageIdIndex() : undefined } }));
    for (const c of this.cells) this.engine.disableElement(c.viewportId);
    this.container.replaceChildren();
    this.layout = layout;
    this.container.dataset.layout = layout;
    const [rows, cols] = dims(layout);
    this.container.style.gridTemplate = `repeat(${rows}, minmax(0, 1fr)) / repeat(${cols}, minmax(0, 1fr))`;
    this.cells = [];
    for (let i = 0; i < this.size; i++) this.cells.push(this.makeCell(i));
    this.active = Math.min(this.active, this.size - 1);
    this.highlight();
    keep.slice(0, this.size).forEach((k, i) => { if (k.series) void this.show(i, k.series, k.options); });
  }

  private makeCell(index: number): Cell {
    const root = document.createElement('div');
    root.className = 'cell';
    root.dataset.index = String(index);
    const element = document.createElement('div');
    element.className = 'cs';
    element.oncontextmenu = (e) => e.preventDefault();
    root.append(element);
    const overlays = {} as Cell['overlays'];
    for (const k of ['tl', 'tr', 'bl', 'br', 'top', 'bottom', 'left', 'right', 'msg', 'label'] as const) {
      const d = document.createElement('div');
      d.className = `ov ov-${k}`;
      root.append(d);
      overlays[k] = d;
    }
    overlays.msg.textContent = t.dropHere;
    root.addEventListener('pointerdown', () => this.activate(index));
    root.addEventListener('dragover', (e) => { e.preventDefault(); root.classList.add('drop'); });
    root.addEventListener('dragleave', () => root.classList.remove('drop'));
    root.addEventListener('drop', (e) => {
      e.preventDefault();
      root.classList.remove('drop');
      const uid = e.dataTransfer?.getData('application/x-series-uid') || e.dataTransfer?.getData('text/plain');
      if (uid) { this.activate(index); this.onDropSeries(index, uid); }
    });
    this.container.append(root);
    const viewportId = `vp-${index}-${++this.seq}`;
    this.enable(viewportId, element);
    const cell: Cell = { index, viewportId, root, element, options: {}, overlays };
    const update = () => this.updateOverlay(cell);
    // the slice a viewport goes to (shown first, scrolled to) is asked for before the rest of its series
    element.addEventListener(Enums.Events.PRE_STACK_NEW_IMAGE, ((e: CustomEvent) => { const id = (e.detail as { imageId?: string }).imageId; if (id && !cache.getImageLoadObject(id)) markUrgent(id); }) as EventListener);
    element.addEventListener(Enums.Events.STACK_NEW_IMAGE, update);
    element.addEventListener(Enums.Events.VOI_MODIFIED, update);
    element.addEventListener(Enums.Events.CAMERA_MODIFIED, update);
    element.addEventListener(Enums.Events.IMAGE_RENDERED, () => { if (!cell.firstRenderAt && cell.series && cell.shown) { cell.firstRenderAt = performance.now(); performance.mark(`viewer-cell-${index}-shown`); } });
    return cell;
  }

  private enable(viewportId: string, element: HTMLDivElement): void {
    this.engine.enableElement({ viewportId, type: Enums.ViewportType.STACK, element, defaultOptions: { background: [0, 0, 0] as Types.Point3 } });
  }

  activate(index: number): void {
    if (index === this.active) return;
    this.active = index;
    this.highlight();
    this.onActivate(index);
  }
  private highlight(): void { this.cells.forEach((c) => c.root.classList.toggle('active', c.index === this.active)); }

  viewport(index = this.active): StackViewport | undefined {
    const c = this.cells[index];
    return c ? (this.engine.getViewport(c.viewportId) as StackViewport | undefined) : undefined;
  }

  setMessage(cell: Cell, msg: string): void { cell.error = msg; cell.overlays.msg.textContent = msg; cell.root.classList.add('has-msg'); }
  private clearMessage(cell: Cell): void { cell.error = undefined; cell.overlays.msg.textContent = ''; cell.root.classList.remove('has-msg'); }

  clear(index: number): void {
    const c = this.cells[index];
    if (!c) return;
    const used = !!c.series;
    c.series = undefined;
    c.options = {};
    c.firstRenderAt = undefined;
    c.shown = false;
    c.overlays.label.textContent = '';
    if (used) {
      // a viewport that showed a stack keeps its camera, flips and window: start again from a new one
      this.engine.disableElement(c.viewportId);
      c.viewportId = `vp-${index}-${++this.seq}`;
      this.enable(c.viewportId, c.element);
    }
    for (const k of ['tl', 'tr', 'bl', 'br', 'top', 'bottom', 'left', 'right'] as const) c.overlays[k].textContent = '';
    c.root.classList.remove('has-msg', 'loaded');
    c.overlays.msg.textContent = t.dropHere;
  }

  async show(index: number, series: Series, options: ShowOptions = {}): Promise<void> {
    const cell = this.cells[index];
    if (!cell) return;
    cell.series = series;
    cell.options = options;
    cell.firstRenderAt = undefined;
    cell.shown = false;
    this.clearMessage(cell);
    cell.overlays.label.textContent = options.label ?? '';
    if (!series.imageIds.length) { this.setMessage(cell, t.errors.noImages); return; }
    const vp = this.viewport(index)!;
    const start = options.index ?? middleIndex(series);
    const index0 = Math.max(0, Math.min(series.imageIds.length - 1, start));
    // a failed image request (a network blip, a busy server) is tried again before the cell says so
    for (let attempt = 1; ; attempt++) {
      try {
        await vp.setStack(series.imageIds, index0);
        // on the WebGL path setStack resolves even when the image failed to load: check it is there
        if (vp.getCornerstoneImage()?.imageId !== series.imageIds[index0]) throw new Error('image not loaded');
        break;
      } catch {
        if (cell.series !== series) return; // replaced meanwhile
        if (attempt >= SHOW_ATTEMPTS) { this.setMessage(cell, t.errors.image); return; }
        await new Promise((r) => setTimeout(r, 400 * attempt));
        if (cell.series !== series) return;
      }
    }
    this.clearMessage(cell);
    if (options.resetView) {
      // setStack has reset the window, inversion, flips and camera already; only what differs is set (each setter costs a render)
      const pan = vp.getPan();
      if (Math.abs(vp.getZoom() - 1) > 1e-3 || Math.hypot(pan[0], pan[1]) > 1e-3) vp.resetCamera({ resetPan: true, resetZoom: true } as never);
      const cam = vp.getCamera();
      if (!!cam.flipHorizontal !== !!options.flipHorizontal || !!cam.flipVertical !== !!options.flipVertical) vp.setCamera({ flipHorizontal: !!options.flipHorizontal, flipVertical: !!options.flipVertical });
      if (this.rotation(index)) vp.setViewPresentation({ rotation: 0 });
    } else if (options.flipHorizontal || options.flipVertical) {
      vp.setCamera({ flipHorizontal: !!options.flipHorizontal, flipVertical: !!options.flipVertical });
    }
    if (options.rotation) vp.setViewPresentation({ rotation: options.rotation });
    if (options.voi) this.applyVoi(index, options.voi);
    cell.root.classList.add('loaded');
    cell.shown = true;
    vp.render();
    this.updateOverlay(cell);
  }

  /** The cell's flips and rotation as the user left them (kept when the layout changes). */
  presentation(index = this.active): Pick<ShowOptions, 'flipHorizontal' | 'flipVertical' | 'rotation'> {
    const vp = this.viewport(index);
    if (!vp || !this.cells[index]?.series) return {};
    const cam = vp.getCamera();
    return { flipHorizontal: !!cam.flipHorizontal, flipVertical: !!cam.flipVertical, rotation: this.rotation(index) };
  }

  /** Display rotation in degrees, clockwise, 0 / 90 / 180 / 270. */
  rotation(index = this.active): number {
    const r = this.viewport(index)?.getViewPresentation()?.rotation ?? 0;
    return ((Math.round(r / 90) * 90) % 360 + 360) % 360;
  }

  applyVoi(index: number, voi: { ww: number; wc: number } | null): void {
    const vp = this.viewport(index);
    if (!vp || !this.cells[index].series) return;
    if (!voi) { vp.resetProperties(); vp.render(); return; }
    vp.setProperties({ voiRange: { lower: voi.wc - voi.ww / 2, upper: voi.wc + voi.ww / 2 } });
    vp.render();
  }

  updateOverlay(cell: Cell): void {
    const series = cell.series;
    const vp = this.viewport(cell.index);
    if (!series || !vp) return;
    const idx = vp.getCurrentImageIdIndex();
    const imageId = series.imageIds[idx];
    const inst = series.instances.find((i) => imageId?.includes(`/instances/${i.sopUid}/`)) ?? series.instances[0];
    const m = inst?.meta ?? {};
    const o = cell.overlays;
    o.tl.innerText = [str(m, '00100010')?.replace(/\^/g, ' '), fmtDate(str(m, '00100030')), str(m, '00100020')].filter(Boolean).join('\n');
    o.tr.innerText = [str(m, '00080080'), fmtDate(str(m, '00080020')), str(m, '00081030')].filter(Boolean).join('\n');
    // an MG stack shown in one viewport: each image says which view it is
    if (series.modality === 'MG' && series.instances.length > 1) o.label.textContent = viewLabel(mgInfo(m)) ?? '';
    o.bl.innerText = [`${t.series} ${series.number || ''} ${series.modality} ${series.description}`.trim(),
      `${t.image} ${idx + 1} / ${series.imageIds.length}${inst ? ` (n° ${inst.number})` : ''}`].join('\n');
    const props = vp.getProperties();
    const r = props.voiRange;
    const zoom = (() => { try { return Number(vp.getZoom()) || 1; } catch { return 1; } })();
    o.br.innerText = [r ? `${t.ww} ${Math.round(r.upper - r.lower)} / ${t.wc} ${Math.round((r.upper + r.lower) / 2)}` : '', `${t.zoomLabel} ${zoom.toFixed(2)}×`, props.invert ? t.invert : ''].filter(Boolean).join('\n');
    const cam = vp.getCamera();
    const rc = rowColLetters(nums(m, '00200037'), strs(m, '00200020'));
    if (rc) {
      const e = rotateLabels(edgeLabels(rc[0], rc[1], !!cam.flipHorizontal, !!cam.flipVertical), this.rotation(cell.index));
      o.left.textContent = frLetters(e.left); o.right.textContent = frLetters(e.right);
      o.top.textContent = frLetters(e.top); o.bottom.textContent = frLetters(e.bottom);
    }
  }

  setOverlaysVisible(v: boolean): void {
    this.showOverlays = v;
    this.container.classList.toggle('no-overlays', !v);
  }

  /** Fits the viewports to their cells. Only those showing an image are drawn again: drawing an empty one costs as much (a WebGL read-back). */
  resize(): void {
    this.engine.resize(false, true);
    for (const c of this.cells) if (c.shown) this.viewport(c.index)?.render();
  }
}
