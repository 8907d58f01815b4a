// The viewer proper: session → banner, study list, series, viewport grid, tools, comparison, mammo
// hanging. Loaded by main.ts once the session's first answers are on their way.
import { imageLoader, utilities, type Types } from '@cornerstonejs/core';
import { t } from './i18n.js';
import { firstStudy, loadSession, sessionBase, UserError, type Session, type StudyRef } from './api.js';
import { loadSeries, middleIndex, type Series } from './dicomweb.js';
import { listSeries, str } from './dicom-json.js';
import { initImaging, initRendering, markUrgent, type Rendering } from './cs.js';
import { presetsFor, type Preset } from './presets.js';
import { mprProblem } from './mpr-geometry.js';
import type { Mpr } from './mpr.js';
import type { ToolKey } from './tools.js';
import { Grid, LAYOUTS, type Layout } from './grid.js';
import { mgInfo } from './mg-info.js';
import { mgFlips, hangMammo, nextHangingMode, type HangingMode } from './hanging.js';
import { mgItems, hangsAsMammo, showSlots, type MgItem } from './mg-items.js';
import { el, fmtDate, renderBanner, renderStudyList, renderReport, runImport, renderHelp } from './panels.js';
import { renderIdentityNotices } from './identity-warning.js';

let T0 = 0;
/** resolves once the first study's images are on screen (or have failed), or after a few seconds at most */
let firstDisplayed: () => void = () => undefined;
const firstDisplay = new Promise<void>((resolve) => { firstDisplayed = resolve; setTimeout(resolve, 4000); });
const $ = (id: string) => document.getElementById(id)!;

type Tools = typeof import('./tools.js');
/** the mouse tools and comparison links, loaded once the first images are shown (or have failed) */
let tools: Tools | undefined;
const toolsLoaded: Promise<Tools> = firstDisplay.then(() => import('./tools.js')).then((m) => {
  m.initTools();
  tools = m;
  refreshMeasures = m.mountMeasurements($('measures'), measurementHost);
  document.body.dataset.tools = 'ready';
  performance.mark('viewer-tools');
  syncToolbar();
  return m;
});
// the images stay on screen; the mouse tools are what is missing, and the user is told
toolsLoaded.catch(() => showError(t.errors.tools));
const withTools = (fn: (m: Tools) => void) => void toolsLoaded.then(fn, () => undefined);

interface StudyState { ref: StudyRef; series: Series[]; error?: string; loading?: Promise<Series[]> }

const state = {
  session: undefined as Session | undefined,
  rendering: undefined as Rendering | undefined,
  grid: undefined as Grid | undefined,
  studies: new Map<string, StudyState>(),
  items: new Map<string, HTMLElement>(),
  shown: undefined as StudyRef | undefined,
  prior: undefined as StudyRef | undefined,
  hanging: undefined as HangingMode | undefined,
  progress: new Map<string, { done: number; total: number }>(),
  timings: {} as Record<string, number>,
  errors: [] as string[],
  mpr: undefined as Mpr | undefined,
  mprMessage: '',
};
let refreshMeasures: () => void = () => undefined;

function showError(msg: string): void {
  const box = $('error');
  box.textContent = msg;
  box.hidden = false;
  state.errors.push(msg);
}

// Cornerstone's image loader leaves some of its request promises without a handler; their failures
// already reach the viewer through IMAGE_LOAD_FAILED/ERROR events (the cell's message, the retry).
window.addEventListener('unhandledrejection', (e) => {
  if (e.reason instanceof XMLHttpRequest) {
    e.preventDefault();
    console.warn(`image request failed: HTTP ${e.reason.status}`);
  }
});

async function main(): Promise<void> {
  performance.mark('viewer-app');
  document.title = t.appTitle;
  const id = new URLSearchParams(location.search).get('session');
  if (!id) { showError(t.errors.noSession); return; }
  renderHelp($('help'));
  buildToolbar();
  let session: Session;
  try {
    session = await loadSession(id);
  } catch (e) {
    showError(e instanceof UserError ? e.message : t.errors.server);
    return;
  }
  state.session = session;
  renderBanner($('banner'), session);
  state.items = renderStudyList($('study-list'), session.studies, { open: (s) => void openStudy(s), compare: (s) => void compareWith(s) });
  renderIdentityNotices($('banner'), state.items, session);
  const forceCpu = new URLSearchParams(location.search).get('render') === 'cpu';
  const imaging = initImaging(forceCpu);
  const first = firstStudy(session);
  // WebGL set-up is long (a context, shaders): the first images are requested, and decoded in the
  // worker, meanwhile. (The CPU path's set-up is short, and it loads images with other options.)
  if (first && !imaging.cpu) await preloadFirstImages(first);
  state.rendering = initRendering(imaging);
  document.body.dataset.render = state.rendering.cpu ? 'cpu' : 'webgl';
  // the report panel takes its place now, so the viewports are made at their final size (a resize
  // of every viewport otherwise follows as soon as the report shows)
  if (first?.report) { $('report').hidden = false; document.body.classList.add('with-report'); }
  state.grid = new Grid($('grid'), state.rendering.engine, (cell, uid) => void dropSeries(cell, uid), () => {
    // reference lines are drawn from the active viewport's plane
    if (tools?.referenceLinesOn()) tools.setReferenceLines(true, state.grid?.cells[state.grid.active]?.viewportId);
    syncToolbar();
  });
  // the first study's layout at once: each viewport made and dropped costs a rendering context resize
  const firstSeries = first ? await ensureStudy(first).catch(() => []) : [];
  state.grid.setLayout(hangsAsMammo(mgItems(firstSeries)) ? '2x2' : '1x1');
  new ResizeObserver(() => state.grid?.resize()).observe($('grid'));
  bindKeys();
  performance.mark('viewer-grid');
  if (first) await openStudy(first);
  else showError(session.studies.length ? t.withdrawn : t.errors.gone);
  firstDisplayed();
}

/** Starts loading the images openStudy will show first (the four MG views, or the first series' middle image). */
async function preloadFirstImages(ref: StudyRef): Promise<void> {
  let series: Series[];
  try { series = await ensureStudy(ref); } catch { return; } // openStudy reports it
  const mg = mgItems(series);
  const ids = hangsAsMammo(mg)
    ? mg.map((m) => m.imageId)
    : series.slice(0, 1).map((s) => s.imageIds[middleIndex(s)]);
  for (const id of ids) markUrgent(id);
  for (const id of ids) void imageLoader.loadAndCacheImage(id, { priority: -5, requestType: 'interaction' } as never).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 0)); // let the requests leave before the long synchronous set-up
}

/**
 * The toolbar, in groups; the less used ones are menus (a <details>: keyboard reachable, closes after
 * a choice) so it fits 1280 px. "Exporter" has its place, kept for the export feature.
 */
function buildToolbar(): void {
  const bar = $('toolbar');
  const group = (label: string, ...kids: HTMLElement[]) => el('div', { class: 'group', role: 'group', 'aria-label': label }, ...kids);
  const btn = (id: string, label: string, fn: () => void, title = label) => { const b = el('button', { id, title, type: 'button' }, label); b.onclick = fn; return b; };
  const menu = (id: string, label: string, ...items: HTMLElement[]) => {
    const d = el('details', { class: 'menu', id }, el('summary', {}, label), el('div', { class: 'menu-items', role: 'menu' }, ...items));
    d.addEventListener('toggle', () => { if (d.open) for (const o of bar.querySelectorAll('details.menu[open]')) if (o !== d) (o as HTMLDetailsElement).open = false; });
    d.addEventListener('click', (e) => { if ((e.target as HTMLElement).closest('.menu-items button')) d.open = false; });
    return d;
  };
  const toolBtn = (k: ToolKey, label: string) => btn(`tool-${k}`, label, () => choosePrimaryTool(k));
  bar.replaceChildren(
    menu('menu-layout', t.layoutMenu, ...LAYOUTS.map((l) => btn(`layout-${l}`, l.replace('x', '×'), () => setLayout(l)))),
    group(t.tools, ...(Object.keys(t.tool) as ToolKey[]).map((k) => toolBtn(k, t.tool[k]))),
    menu('menu-measures', t.measures, ...(Object.keys(t.measure) as ToolKey[]).map((k) => toolBtn(k, t.measure[k]))),
    menu('menu-presets', t.presetsMenu),
    menu('menu-view', t.view,
      btn('invert', t.invert, invert), btn('fit', t.fit, fit), btn('reset', t.reset, reset),
      btn('flip-h', t.flipH, () => flip('h')), btn('flip-v', t.flipV, () => flip('v')), btn('rotate', t.rotate, rotate),
      btn('reference-lines', t.referenceLines, toggleReferenceLines)),
    el('div', { class: 'group', role: 'group', 'aria-label': t.cine, id: 'cine-group' }, btn('cine-toggle', `▶ ${t.cine}`, toggleCine, `${t.cine} : ${t.play} / ${t.pause}`),
      el('label', { class: 'fps', title: t.fps }, el('input', { id: 'cine-fps', type: 'number', min: '1', max: '60', value: '10', 'aria-label': t.fps }), t.fpsShort)),
    btn('mpr-open', t.mpr, () => void openMprView()),
    group(t.hanging, btn('hanging-toggle', t.hangingTo['cop-CC'], toggleHanging)),
    menu('menu-more', t.more,
      btn('tags-open', t.tags, showTagBrowser),
      btn('import', t.import, () => void importShown()),
      btn('report-toggle', t.showReport, () => toggleReport())),
    menu('menu-export', t.exportLabel, btn('export-png', t.exportPng, () => void runExport('png')), btn('export-zip', t.exportZip, () => void runExport('zip'))),
    btn('help-button', '?', () => { $('help').hidden = !$('help').hidden; }, t.help),
  );
  $('cine-fps').addEventListener('change', () => cineSpeed(0));
  syncToolbar();
}

/** Imports the shown study, its measurements with it (a DICOM SR built by sr.ts). */
async function importShown(): Promise<void> {
  const ref = state.shown;
  if (!ref || !state.session) return;
  let measurements: string | undefined;
  try {
    measurements = (await import('./sr.js')).measurementReport(state.studies.get(ref.studyUid)?.series ?? []);
  } catch (e) {
    console.warn('measurement report', e);
    showError(t.measurementsFailed); // the images are imported all the same
  }
  await runImport($('import-status'), state.session.importUrl, ref.studyUid, measurements);
}

/** studies whose saved measurements were put back on their images in this page */
const restored = new Set<string>();
/** Puts back the measurements saved with the exam in the local PACS, if any (404: none). */
async function restoreMeasurements(ref: StudyRef, series: Series[]): Promise<void> {
  if (restored.has(ref.studyUid) || !state.session) return;
  restored.add(ref.studyUid);
  await toolsLoaded;
  try {
    const res = await fetch(`${sessionBase(state.session)}/measurements/studies/${encodeURIComponent(ref.studyUid)}`, { credentials: 'same-origin', headers: { Accept: 'application/dicom' } });
    if (!res.ok) return;
    const n = (await import('./sr.js')).restoreMeasurements(await res.arrayBuffer(), series);
    document.body.dataset.measurements = String(n);
  } catch (e) {
    console.warn('saved measurements', e);
    showError(t.measurementsFailed);
  }
}

/** "Exporter": the active viewport as PNG, or its series as a DICOM zip (export.ts). */
async function runExport(kind: 'png' | 'zip'): Promise<void> {
  const grid = state.grid;
  const cell = grid?.cells[grid.active];
  const vp = grid?.viewport();
  if (!cell?.series || !vp || !state.session) return;
  try {
    const m = await import('./export.js');
    if (kind === 'png') await m.exportPng(state.session, cell, vp); else m.exportZip(state.session, cell);
    document.body.dataset.exported = kind;
  } catch (e) {
    showError(`${t.exportFailed} : ${e instanceof UserError ? e.message : t.errors.server}`);
  }
}

function syncToolbar(): void {
  for (const k of [...Object.keys(t.tool), ...Object.keys(t.measure)]) document.getElementById(`tool-${k}`)?.classList.toggle('on', (tools?.primaryTool() ?? 'wl') === k);
  for (const l of LAYOUTS) document.getElementById(`layout-${l}`)?.classList.toggle('on', state.grid?.layout === l);
  const hang = document.getElementById('hanging-toggle') as HTMLButtonElement | null;
  if (hang) {
    hang.hidden = !state.hanging;
    const next = state.hanging ? nextHangingMode(state.hanging, !!findMgPrior()) : 'cop-CC';
    hang.disabled = !findMgPrior();
    // the button says where it goes
    hang.textContent = t.hangingTo[next];
  }
  const presets = document.querySelector('#menu-presets .menu-items');
  if (presets) {
    const list = activePresets();
    presets.replaceChildren(...list.map((p, i) => {
      const b = el('button', { id: `preset-${p.key}`, type: 'button', title: i < 5 ? `${p.label} (${i + 1})` : p.label }, p.label);
      b.onclick = () => applyPreset(p.key);
      return b;
    }));
  }
  const cine = document.getElementById('cine-toggle');
  if (cine) { const on = !!tools?.cinePlaying(); cine.textContent = on ? `⏸ ${t.pause}` : `▶ ${t.cine}`; cine.classList.toggle('on', on); }
  document.getElementById('reference-lines')?.classList.toggle('on', !!tools?.referenceLinesOn());
  // only what can act on the active image: cine on a stack, MPR on a CT or MR series
  const active = state.grid?.cells[state.grid.active]?.series;
  const cineGroup = document.getElementById('cine-group');
  if (cineGroup) cineGroup.hidden = !active || active.imageIds.length < 2;
  const mpr = document.getElementById('mpr-open');
  if (mpr) mpr.hidden = !active || !['CT', 'MR'].includes(active.modality);
  $('sync-state').textContent = tools?.isSynced() ? t.syncOn : '';
}

function setLayout(l: Layout): void {
  tools?.unsync(); // the linked viewports are made again
  tools?.stopCine();
  state.grid!.setLayout(l);
  syncToolbar();
}

async function ensureStudy(ref: StudyRef): Promise<Series[]> {
  let st = state.studies.get(ref.studyUid);
  if (st?.loading) return st.loading;
  st = { ref, series: [] };
  state.studies.set(ref.studyUid, st);
  const root = state.session!.dicomWebRoot;
  st.loading = (async () => {
    const list = await listSeries(root, ref.studyUid);
    const series = await Promise.all(list.map((s) => loadSeries(root, ref.studyUid, s.seriesUid)));
    st!.series = series.filter((s) => s.imageIds.length);
    renderThumbnails(ref, st!.series);
    return st!.series;
  })();
  st.loading.catch((e: unknown) => {
    const msg = e instanceof UserError ? e.message : t.errors.server;
    st!.error = msg;
    const li = state.items.get(ref.studyUid);
    if (li && !li.querySelector('.study-msg')) li.append(el('div', { class: 'study-msg', role: 'alert' }, msg));
  });
  return st.loading;
}

function renderThumbnails(ref: StudyRef, series: Series[]): void {
  const host = state.items.get(ref.studyUid)?.querySelector('.series-list');
  if (!host) return;
  host.replaceChildren();
  for (const s of series) {
    const canvas = el('canvas', { width: '96', height: '96' });
    const frame = el('div', { class: 'thumb-img' }, canvas);
    const bar = el('progress', { max: String(s.imageIds.length), value: '0' });
    const card = el('div', { class: 'thumb', draggable: 'true', 'data-series': s.seriesUid, title: s.description || s.modality },
      frame, el('div', { class: 'thumb-label' }, `${s.modality} ${s.number || ''} · ${t.images(s.imageIds.length)}`), el('div', { class: 'thumb-desc' }, s.description), bar);
    card.ondragstart = (e) => { e.dataTransfer?.setData('application/x-series-uid', s.seriesUid); e.dataTransfer?.setData('text/plain', s.seriesUid); };
    card.onclick = (e) => { e.stopPropagation(); void dropSeries(state.grid!.active, s.seriesUid); };
    host.append(card);
    const mid = s.imageIds[middleIndex(s)];
    // the images on screen first: thumbnails and the rest of the series only once they are shown
    void firstDisplay.then(() => utilities.loadImageToCanvas({ canvas, imageId: mid, thumbnail: true, useCPURendering: state.rendering!.cpu } as never))
      .then(() => card.classList.add('ready'))
      .catch(() => card.classList.add('failed'));
    void firstDisplay.then(() => prefetch(s, bar));
  }
}

/** Loads every image of a series into the cache, counting progress for the thumbnail's bar. */
async function prefetch(s: Series, bar: HTMLProgressElement): Promise<void> {
  const p = { done: 0, total: s.imageIds.length };
  state.progress.set(s.seriesUid, p);
  let next = 0;
  const worker = async () => {
    while (next < s.imageIds.length) {
      const id = s.imageIds[next++];
      try { await imageLoader.loadAndCacheImage(id); } catch { /* shown by the viewport */ }
      p.done++;
      bar.value = p.done;
      if (p.done === p.total) bar.classList.add('complete');
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

function findSeries(uid: string): Series | undefined {
  for (const st of state.studies.values()) { const s = st.series.find((x) => x.seriesUid === uid); if (s) return s; }
  return undefined;
}

async function dropSeries(cell: number, uid: string): Promise<void> {
  const s = findSeries(uid);
  if (!s) return;
  state.hanging = undefined;
  say(''); // a tool's message was about the series shown before
  tools?.unsync(); // another series in a linked viewport: the comparison's pairing no longer holds
  await state.grid!.show(cell, s, mgOptions(s));
  syncToolbar();
}

/** MG images single-series: mirror by the hanging convention even when shown alone. */
function mgOptions(s: Series) {
  if (s.modality !== 'MG' || s.instances.length !== 1) return {};
  return mgFlips(mgInfo(s.instances[0].meta));
}


function findMgPrior(): StudyRef | undefined {
  const cur = state.shown;
  if (!cur || !state.session) return undefined;
  return state.session.studies
    .filter((s) => s.studyUid !== cur.studyUid && s.status === 'available' && s.modalities.includes('MG') && s.date <= cur.date)
    .sort((a, b) => b.date.localeCompare(a.date))[0];
}

async function openStudy(ref: StudyRef): Promise<void> {
  state.shown = ref;
  state.prior = undefined;
  say('');
  tools?.unsync();
  for (const [uid, li] of state.items) li.classList.toggle('shown', uid === ref.studyUid);
  void renderReport($('report'), ref).then(syncReportButton);
  $('import-status').hidden = true;
  let series: Series[];
  try {
    series = await ensureStudy(ref);
  } catch (e) {
    showError(e instanceof UserError ? e.message : t.errors.server);
    return;
  }
  $('error').hidden = true;
  if (!series.length) { showError(t.errors.noImages); return; }
  void restoreMeasurements(ref, series);
  if (hangsAsMammo(mgItems(series))) {
    state.hanging = 'four';
    await hang();
  } else {
    state.hanging = undefined;
    const grid = state.grid!;
    grid.setLayout(series.length > 1 && grid.layout === '1x1' ? '1x1' : grid.layout);
    for (let i = 0; i < grid.size; i++) grid.clear(i);
    await Promise.all(series.slice(0, grid.size).map((s, i) => grid.show(i, s)));
    markFirstImage();
  }
  syncToolbar();
}

function markFirstImage(): void {
  const wait = () => {
    if (state.grid!.cells.some((c) => c.firstRenderAt)) {
      state.timings.firstImageMs ??= Math.round(performance.now() - T0);
      return;
    }
    requestAnimationFrame(wait);
  };
  wait();
}

async function hang(): Promise<void> {
  const grid = state.grid!;
  const cur = mgItems(state.studies.get(state.shown!.studyUid)?.series ?? []);
  let prior: MgItem[] | undefined;
  if (state.hanging !== 'four') {
    const p = findMgPrior();
    if (p) prior = mgItems(await ensureStudy(p).catch(() => []));
  }
  const priorRef = state.hanging !== 'four' ? findMgPrior() : undefined;
  const slots = hangMammo(cur, prior, state.hanging ?? 'four', (v) => t.priorView(v, fmtDate(priorRef?.date)));
  tools?.unsync();
  if (grid.layout !== '2x2') grid.setLayout('2x2');
  await showSlots(grid, slots);
  // current over prior: each view's zoom and pan follow its prior's (top row over bottom row)
  // (WebGL only: on the CPU renderer the linked camera moved the prior off its place, see the e2e mammography test)
  if (state.hanging !== 'four' && !state.rendering!.cpu && grid.cells.slice(0, 4).every((c) => c.series)) {
    const ids = grid.cells.map((c) => c.viewportId);
    withTools((m) => {
      if (ids.some((id, i) => grid.cells[i]?.viewportId !== id)) return; // hung again meanwhile
      m.linkZoomPan([[ids[0], ids[2]], [ids[1], ids[3]]]);
      syncToolbar();
    });
  }
  markFirstImage();
  const started = performance.now();
  const waitAll = () => {
    const filled = grid.cells.filter((c) => c.series);
    if (filled.length && filled.every((c) => c.firstRenderAt)) {
      state.timings.mgFourViewMs ??= Math.round(performance.now() - T0);
      document.body.dataset.hung = state.hanging ?? '';
      return;
    }
    if (performance.now() - started < 60000) requestAnimationFrame(waitAll);
  };
  waitAll();
  syncToolbar();
}

function toggleHanging(): void {
  if (!state.hanging) return;
  state.hanging = nextHangingMode(state.hanging, !!findMgPrior());
  void hang();
}

async function compareWith(prior: StudyRef): Promise<void> {
  const current = state.shown;
  if (!current || prior.studyUid === current.studyUid) { await openStudy(prior); return; }
  let priorSeries: Series[];
  try { priorSeries = await ensureStudy(prior); } catch (e) { showError(e instanceof UserError ? e.message : t.errors.server); return; }
  if (state.hanging && priorSeries.some((s) => s.modality === 'MG')) {
    state.hanging = 'cop-CC';
    await hang();
    return;
  }
  const grid = state.grid!;
  const left = grid.cells[grid.active]?.series ?? state.studies.get(current.studyUid)?.series[0];
  if (!left) return;
  const same = (a?: number[], b?: number[]) => !!a && !!b && a.length >= 6 && b.length >= 6 && a.every((v, i) => Math.abs(v - b[i]) < 0.05);
  const match = priorSeries.find((s) => s.modality === left.modality && same(s.orientation, left.orientation))
    ?? priorSeries.find((s) => s.modality === left.modality) ?? priorSeries[0];
  if (!match) return;
  state.prior = prior;
  state.hanging = undefined;
  tools?.unsync();
  grid.setLayout('1x2');
  grid.clear(0); grid.clear(1);
  await grid.show(0, left, { label: t.current });
  await grid.show(1, match, { label: `${t.prior} ${prior.date.slice(6, 8)}/${prior.date.slice(4, 6)}/${prior.date.slice(0, 4)}` });
  const coplanar = match.modality === left.modality && (match.frameOfReferenceUid === left.frameOfReferenceUid || same(match.orientation, left.orientation));
  const ids = [grid.cells[0].viewportId, grid.cells[1].viewportId];
  withTools((m) => {
    if (state.prior !== prior || ids.some((id, i) => grid.cells[i]?.viewportId !== id)) return; // left meanwhile
    m.syncViewports(ids, coplanar, () => grid.cells[grid.active]?.viewportId);
    syncToolbar();
  });
  grid.activate(0);
  syncToolbar();
}

function activePresets(index = state.grid?.active ?? 0): Preset[] {
  const grid = state.grid;
  const c = grid?.cells[index];
  return presetsFor(c?.series?.modality, c?.series ? grid!.viewport(index)?.getCornerstoneImage() as Types.IImage | undefined : undefined);
}

/** Applies preset `key` to the active viewport (to every view in the mammography hanging). */
function applyPreset(key: string): void {
  const grid = state.grid!;
  const targets = state.hanging ? grid.cells.map((c) => c.index) : [grid.active];
  for (const i of targets) {
    const p = activePresets(i).find((x) => x.key === key);
    if (p) grid.applyVoi(i, p.voi);
  }
}

function flip(axis: 'h' | 'v'): void {
  const vp = state.grid!.viewport();
  if (!vp || !state.grid!.cells[state.grid!.active]?.series) return;
  const cam = vp.getCamera();
  vp.setCamera(axis === 'h' ? { flipHorizontal: !cam.flipHorizontal } : { flipVertical: !cam.flipVertical });
  vp.render();
}

function rotate(): void {
  const grid = state.grid!;
  const vp = grid.viewport();
  if (!vp || !grid.cells[grid.active]?.series) return;
  vp.setViewPresentation({ rotation: (grid.rotation() + 90) % 360 });
  vp.render();
}

function toggleCine(): void {
  withTools((m) => {
    if (m.cinePlaying()) m.stopCine();
    else {
      const vp = state.grid!.viewport();
      const fps = Number(($('cine-fps') as HTMLInputElement).value) || 10;
      if (vp && (vp.getImageIds().length ?? 0) > 1) m.playCine(vp.element as HTMLDivElement, fps);
    }
    syncToolbar();
  });
}

function cineSpeed(delta: number): void {
  const input = $('cine-fps') as HTMLInputElement;
  input.value = String(Math.max(1, Math.min(60, (Number(input.value) || 10) + delta)));
  withTools((m) => { if (m.cinePlaying()) { m.stopCine(); toggleCine(); } });
}

function toggleReferenceLines(): void {
  withTools((m) => { m.setReferenceLines(!m.referenceLinesOn(), state.grid!.cells[state.grid!.active]?.viewportId); syncToolbar(); });
}

/** A status line under the toolbar: what a tool cannot do here, and why. */
function say(text: string): void {
  const msg = $('mpr-msg');
  msg.textContent = text;
  msg.hidden = !text;
  state.mprMessage = text;
}

function choosePrimaryTool(k: ToolKey): void {
  // Cornerstone's magnifier copies the viewport's properties, which the CPU renderer refuses (VOI LUT function)
  if (k === 'magnify' && state.rendering?.cpu) { say(t.magnifyNeedsWebgl); return; }
  withTools((m) => { m.setPrimaryTool(k); syncToolbar(); });
}

/** MPR of the active series, or the reason it cannot be shown. */
async function openMprView(): Promise<void> {
  const grid = state.grid!;
  const series = grid.cells[grid.active]?.series;
  if (!series) return;
  if (state.mpr) { state.mpr.close(); return; }
  if (state.rendering!.cpu) { say(t.mprNeedsWebgl); return; }
  const problem = mprProblem(series);
  if (problem) { say(problem); return; }
  say(t.mprLoading);
  try {
    await toolsLoaded;
    const { openMpr } = await import('./mpr.js');
    tools?.stopCine();
    $('grid').hidden = true;
    state.mpr = await openMpr($('mpr'), state.rendering!.engine, series.imageIds, () => {
      state.mpr = undefined;
      $('grid').hidden = false;
      document.body.dataset.mpr = '';
      state.grid!.resize();
    });
    document.body.dataset.mpr = 'open';
    say('');
  } catch (e) {
    console.warn('MPR failed', e);
    state.mpr?.close();
    $('grid').hidden = false;
    say(t.mprFailed);
  }
}

/** The DICOM attributes of the image in the active viewport. */
function showTagBrowser(): void {
  const grid = state.grid!;
  const c = grid.cells[grid.active];
  const vp = grid.viewport();
  if (!c?.series || !vp) return;
  const idx = vp.getCurrentImageIdIndex();
  const imageId = c.series.imageIds[idx];
  const inst = c.series.instances.find((i) => imageId?.includes(`/instances/${i.sopUid}/`)) ?? c.series.instances[0];
  void import('./tag-browser.js').then((m) => m.showTags($('tags'), inst.meta, t.tagsTitle(idx + 1, c.series!.imageIds.length)));
}

/** What the measurement panel needs from the viewer: where an image is, how to show it. */
const measurementHost = {
  describe(imageId: string) {
    for (const st of state.studies.values()) for (const s of st.series) {
      const k = s.imageIds.indexOf(imageId);
      if (k >= 0) return { seriesUid: s.seriesUid, seriesLabel: `${fmtDate(st.ref.date)} · ${t.series} ${s.number || ''} ${s.modality} ${s.description}`.trim(), image: `${t.image} ${k + 1}` };
    }
    return undefined;
  },
  jump(imageId: string) {
    const grid = state.grid!;
    let cell = grid.cells.find((c) => c.series?.imageIds.includes(imageId));
    if (!cell) {
      const s = [...state.studies.values()].flatMap((st) => st.series).find((x) => x.imageIds.includes(imageId));
      if (!s) return;
      void grid.show(grid.active, s, { index: s.imageIds.indexOf(imageId) }).then(syncToolbar);
      return;
    }
    grid.activate(cell.index);
    const vp = grid.viewport(cell.index);
    const k = cell.series!.imageIds.indexOf(imageId);
    if (vp && vp.getCurrentImageIdIndex() !== k) void vp.setImageIdIndex(k);
  },
  remove(uid: string) { withTools((m) => { m.selectOnly(uid); m.deleteSelected(); }); },
  undo() { withTools((m) => m.undo()); },
};

function invert(): void {
  const vp = state.grid!.viewport();
  if (!vp) return;
  vp.setProperties({ invert: !vp.getProperties().invert });
  vp.render();
}

/** Fits the image to its viewport, keeping the user's flips and rotation. */
function fit(): void {
  const grid = state.grid!;
  const vp = grid.viewport();
  if (!vp || !grid.cells[grid.active]?.series) return;
  const keep = grid.presentation();
  vp.resetCamera({ resetPan: true, resetZoom: true });
  vp.setCamera({ flipHorizontal: !!keep.flipHorizontal, flipVertical: !!keep.flipVertical });
  if (keep.rotation) vp.setViewPresentation({ rotation: keep.rotation });
  vp.render();
}

/** Back to the image as first shown: window, zoom, pan, and the hanging's flips (not the user's). */
function reset(): void {
  const grid = state.grid!;
  const vp = grid.viewport();
  const o = grid.cells[grid.active]?.options ?? {};
  if (!vp || !grid.cells[grid.active]?.series) return;
  vp.resetProperties();
  vp.resetCamera({ resetPan: true, resetZoom: true, resetRotation: true } as never);
  vp.setCamera({ flipHorizontal: !!o.flipHorizontal, flipVertical: !!o.flipVertical });
  vp.setViewPresentation({ rotation: 0 });
  vp.render();
}

function scrollBy(delta: number, absolute?: 'first' | 'last'): void {
  const vp = state.grid!.viewport();
  const n = vp?.getImageIds().length ?? 0;
  if (!vp || !n) return;
  const cur = vp.getCurrentImageIdIndex();
  const target = absolute === 'first' ? 0 : absolute === 'last' ? n - 1 : Math.max(0, Math.min(n - 1, cur + delta));
  if (target !== cur) void vp.setImageIdIndex(target);
}

function syncReportButton(): void {
  const b = document.getElementById('report-toggle') as HTMLButtonElement | null;
  if (!b) return;
  b.disabled = !state.shown?.report;
  b.textContent = $('report').hidden ? t.showReport : t.hideReport;
}

function toggleReport(): void {
  const r = $('report');
  if (!state.shown?.report) return;
  r.hidden = !r.hidden;
  document.body.classList.toggle('with-report', !r.hidden);
  syncReportButton();
}

function bindKeys(): void {
  document.addEventListener('keydown', (e) => {
    const k = e.key;
    // Escape closes the tag browser even from its search field
    if (k === 'Escape' && !$('tags').hidden) { $('tags').hidden = true; e.preventDefault(); return; }
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.metaKey || e.altKey) return;
    if (e.ctrlKey) {
      if (k === 'z' || k === 'Z') withTools((m) => m.undo());
      else if (k === 'y' || k === 'Y') withTools((m) => m.redo());
      else return;
      e.preventDefault();
      return;
    }
    const toolKeys: Record<string, ToolKey> = {
      w: 'wl', z: 'zoom', p: 'pan', s: 'scroll', l: 'length', a: 'angle', k: 'cobb', e: 'ellipse', x: 'rect', d: 'probe', b: 'bidir', n: 'arrow', u: 'magnify',
    };
    const lower = k.toLowerCase();
    let handled = true;
    if (state.mpr && k === 'Escape') state.mpr.close();
    else if (k === 'Escape') { $('help').hidden = true; $('tags').hidden = true; }
    else if (state.mpr) handled = false; // the MPR has its own mouse tools; grid keys do not act on it
    else if (k === 'ArrowUp' || k === 'ArrowLeft') scrollBy(-1);
    else if (k === 'ArrowDown' || k === 'ArrowRight') scrollBy(1);
    else if (k === 'PageUp') scrollBy(-10);
    else if (k === 'PageDown') scrollBy(10);
    else if (k === 'Home') scrollBy(0, 'first');
    else if (k === 'End') scrollBy(0, 'last');
    else if (/^[1-9]$/.test(k)) { const p = activePresets()[Number(k) - 1]; if (p) applyPreset(p.key); }
    else if (e.shiftKey && lower === 'r') toggleReferenceLines();
    else if (e.shiftKey && lower === 'm') void openMprView();
    else if (e.shiftKey && lower === 't') showTagBrowser();
    else if (toolKeys[lower]) choosePrimaryTool(toolKeys[lower]);
    else if (k === 'Delete' || k === 'Backspace') withTools((m) => m.deleteSelected());
    else if (lower === 'h') flip('h');
    else if (lower === 'v') flip('v');
    else if (lower === 'q') rotate();
    else if (k === ' ') toggleCine();
    else if (k === '+') cineSpeed(2);
    else if (k === '-') cineSpeed(-2);
    else if (lower === 'i') invert();
    else if (lower === 'r') reset();
    else if (lower === 'f') fit();
    else if (lower === 'g') setLayout(LAYOUTS[(LAYOUTS.indexOf(state.grid!.layout) + 1) % LAYOUTS.length]);
    else if (lower === 'o') state.grid!.setOverlaysVisible(!state.grid!.showOverlays);
    else if (k === 'Tab') state.grid!.activate((state.grid!.active + 1) % state.grid!.size);
    else if (lower === 'c') { const p = state.session?.studies.find((s) => !s.current && s.status === 'available'); if (p) void compareWith(p); }
    else if (lower === 'm') toggleHanging();
    else if (lower === 't') toggleReport();
    else if (k === '?') $('help').hidden = !$('help').hidden;
    else handled = false;
    if (handled) e.preventDefault();
  });
}

/** Read-only view of the viewer for end-to-end tests and support. */
(window as unknown as { __viewer: unknown }).__viewer = {
  get renderPath() { return state.rendering ? (state.rendering.cpu ? 'cpu' : 'webgl') : undefined; },
  get timings() { return { ...state.timings }; },
  get errors() { return [...state.errors]; },
  get hanging() { return state.hanging; },
  get mprMessage() { return state.mprMessage; },
  /** the MPR's three planes: camera focal point and slice normal (crosshairs move the others' slices) */
  mpr() {
    const m = state.mpr;
    if (!m) return undefined;
    return m.viewportIds.map((id) => {
      const vp = state.rendering!.engine.getViewport(id);
      const cam = vp?.getCamera();
      return { id, focalPoint: cam?.focalPoint, normal: cam?.viewPlaneNormal, rendered: !!vp?.getDefaultActor?.() };
    });
  },
  get cine() { return !!tools?.cinePlaying(); },
  measurements() { return tools?.listMeasurements() ?? []; },
  progress(uid: string) { return state.progress.get(uid); },
  /** Cornerstone's core and tools modules (their annotation API), for end-to-end tests and support */
  cornerstone: async () => ({ core: await import('@cornerstonejs/core'), tools: (await toolsLoaded, await import('@cornerstonejs/tools')) }),
  cells() {
    const g = state.grid;
    if (!g) return [];
    return g.cells.map((c) => {
      const vp = g.viewport(c.index);
      const cam = vp?.getCamera();
      const props = c.series ? vp?.getProperties() : undefined;
      return {
        index: c.index, viewportId: c.viewportId, label: c.overlays.label.textContent, studyUid: c.series?.studyUid, seriesUid: c.series?.seriesUid,
        imageIndex: c.series ? vp?.getCurrentImageIdIndex() : undefined, count: c.series?.imageIds.length,
        flipHorizontal: !!cam?.flipHorizontal, flipVertical: !!cam?.flipVertical, rotation: c.series ? g.rotation(c.index) : 0, rendered: !!c.firstRenderAt,
        edges: c.series ? [c.overlays.top.textContent, c.overlays.right.textContent, c.overlays.bottom.textContent, c.overlays.left.textContent] : undefined,
        voi: props?.voiRange, invert: !!props?.invert, zoom: c.series ? vp?.getZoom() : undefined, error: c.error,
        laterality: c.series?.modality === 'MG' ? str(c.series.instances[0]?.meta ?? {}, '00200062') : undefined,
        /** the slice the viewport is on is the one drawn (not a blank, nor the previous one while it loads) */
        drawn: !!c.series && !!vp && vp.getCornerstoneImage()?.imageId === c.series.imageIds[vp.getCurrentImageIdIndex()],
      };
    });
  },
};

/** Called by the entry (main.ts) with the time its script started: timings count from there. */
export function start(t0: number): void {
  T0 = t0;
  main().catch((e) => showError(e instanceof UserError ? e.message : t.errors.server));
}
