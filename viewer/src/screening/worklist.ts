// The reading worklist (/viewer/screening.html?batch=ID): the batch's cases in order, each hung with
// the viewer's mammography code (current RCC | LCC | RMLO | LMLO over the prior's), the L1 report
// beside, the verdict panel. Keyboard-first: one key records a normal case and opens the next; that
// key is inactive for the first 2 s of a case; a toast says what was recorded, with undo, until the
// reader moves on again. The next cases are fetched into the image cache ahead of the reader.
import { t } from '../i18n.js';
import { UserError } from '../api.js';
import { el, fmtDate, renderHelp, renderReport } from '../panels.js';
import { initImaging, initRendering, type Rendering } from '../cs.js';
import { Grid } from '../grid.js';
import { hangMammo } from '../hanging.js';
import { showSlots } from '../mg-items.js';
import { s } from './i18n.js';
import { amendVerdict, deferCase, getBatch, me, recordVerdict, undefer, undoVerdict, watchBatch } from './client.js';
import { CaseLoader, type LoadedCase } from './case-loader.js';
import { renderPanel, type PanelState } from './verdict-panel.js';
import { buildVerdict, describeVerdict, draftFrom, emptyDraft, DEFER_REASONS, SIGNS, VIEWS, type Breast } from './verdict.js';
import { caseProgressText, patientName, progressBar } from './progress.js';
import type { BatchWithCases, Case, Reader } from './types.js';

/** the quick "normal" key is inactive this long after a case is shown (against double validation) */
export const NORMAL_GUARD_MS = 2000;
/** cases fetched into the image cache ahead of the one shown */
const AHEAD = 2;
const $ = (id: string) => document.getElementById(id)!;

interface Toast { caseId: string; kind: 'verdict' | 'defer'; text: string }

const st = {
  batch: undefined as BatchWithCases | undefined,
  cases: [] as Case[],
  index: -1,
  reader: undefined as Reader | undefined,
  rendering: undefined as Rendering | undefined,
  grid: undefined as Grid | undefined,
  loader: undefined as CaseLoader | undefined,
  /** the display in progress or done: a newer one makes an older one stop */
  seq: 0,
  openedAt: 0,
  panel: { draft: emptyDraft(), amending: false, closed: false, busy: false } as PanelState,
  toast: undefined as Toast | undefined,
  /** keystroke → every view of the case drawn (ms), per case change */
  nextCaseMs: [] as number[],
  /** where each of those went: case data ready, images placed in the viewports, drawn */
  phases: [] as { load: number; place: number; draw: number }[],
  items: new Map<string, { li: HTMLElement; set(c: Case): void }>(),
  shownCase: undefined as string | undefined,
  tools: false,
};

export async function startWorklist(batchId: string): Promise<void> {
  document.body.classList.add('screening-worklist');
  buildPage();
  renderHelp($('help'), s.shortcuts);
  bindKeys();
  try {
    const [batch, reader] = await Promise.all([getBatch(batchId), me().catch(() => undefined)]);
    st.batch = batch;
    st.reader = reader;
    st.panel.reader = reader;
    st.panel.closed = batch.state === 'closed';
    st.cases = [...batch.cases].sort((a, b) => a.position - b.position);
  } catch (e) {
    showError(e instanceof UserError ? e.message : t.errors.server);
    return;
  }
  document.title = `${s.worklist} — ${st.batch.name}`;
  $('batch-name').textContent = st.batch.name;
  renderCaseList();
  const imaging = initImaging(new URLSearchParams(location.search).get('render') === 'cpu');
  st.rendering = initRendering(imaging);
  document.body.dataset.render = st.rendering.cpu ? 'cpu' : 'webgl';
  st.loader = new CaseLoader(() => !!st.rendering?.cpu);
  st.grid = new Grid($('grid'), st.rendering.engine, () => undefined, () => undefined);
  new ResizeObserver(() => st.grid?.resize()).observe($('grid'));
  watchBatch(batchId, { batch: (b) => { if (st.batch) { Object.assign(st.batch, b); st.panel.closed = b.state === 'closed'; } }, case: onCaseEvent });
  // start with the first case still to read
  const first = st.cases.findIndex((c) => !c.verdict && !c.deferral);
  await goTo(first >= 0 ? first : 0, performance.now());
}

function buildPage(): void {
  const datalist = el('datalist', { id: 'locations' }, ...['QSE', 'QSI', 'QIE', 'QII', 'central', 'RA', ...Array.from({ length: 12 }, (_, i) => `${i + 1}h`)].map((v) => el('option', { value: v })));
  const help = el('button', { type: 'button', id: 'help-button', title: t.help }, '?');
  help.onclick = () => { $('help').hidden = !$('help').hidden; };
  $('app').replaceChildren(
    el('header', { class: 'banner', id: 'banner' },
      el('a', { href: location.pathname, class: 'button' }, s.back),
      el('strong', { id: 'batch-name' }), el('span', { id: 'case-pos' }), el('div', { id: 'patient', class: 'traits' }), el('div', { class: 'spacer' }), help),
    el('aside', { class: 'side' }, el('h2', {}, s.worklist), el('ol', { id: 'case-list', class: 'case-list' })),
    el('main', { class: 'centre' }, el('div', { id: 'error', class: 'error', role: 'alert', hidden: '' }), el('div', { id: 'case-msg', class: 'case-msg', role: 'status', hidden: '' }), el('div', { id: 'grid', class: 'grid', 'data-layout': '1x1' })),
    el('aside', { class: 'right' }, el('section', { id: 'report', class: 'report', 'aria-label': s.report }), el('section', { id: 'verdict', class: 'verdict', 'aria-label': s.verdict })),
    el('div', { id: 'toast', class: 'toast', role: 'status', hidden: '' }),
    el('div', { id: 'help', class: 'help', hidden: '' }),
    datalist,
  );
}

function showError(msg: string): void { const e = $('error'); e.textContent = msg; e.hidden = !msg; }
function caseMessage(msg: string): void { const e = $('case-msg'); e.textContent = msg; e.hidden = !msg; }

function renderCaseList(): void {
  const ol = $('case-list');
  ol.replaceChildren();
  st.items.clear();
  st.cases.forEach((c, i) => {
    const bar = progressBar('case-progress');
    const mark = el('span', { class: 'mark' });
    const li = el('li', { class: 'case', 'data-case': c.id, tabindex: '-1' }, el('span', { class: 'pos' }, String(c.position)), el('span', { class: 'who' }, patientName(c)), mark, bar.root);
    li.onclick = () => void goTo(i, performance.now());
    const set = (x: Case) => {
      li.dataset.state = x.state;
      li.dataset.outcome = x.verdict?.outcome ?? (x.deferral ? 'deferred' : '');
      mark.textContent = x.verdict ? s.outcome[x.verdict.outcome] : x.deferral ? s.defer : '';
      bar.set(x.instances.done, x.instances.total, caseProgressText(x));
      bar.root.hidden = x.state === 'ready';
    };
    set(c);
    st.items.set(c.id, { li, set });
    ol.append(li);
  });
}

function onCaseEvent(c: Case): void {
  const i = st.cases.findIndex((x) => x.id === c.id);
  if (i < 0) return;
  const was = st.cases[i];
  st.cases[i] = c;
  st.items.get(c.id)?.set(c);
  if (i !== st.index) return;
  // the case shown became readable, or another tab recorded its verdict
  if (was.state !== 'ready' && c.state === 'ready') void goTo(i, performance.now(), true);
  else if (!st.panel.busy && !st.panel.amending) { st.panel.c = c; panel(); }
}

/** Shows case i. `keyAt`: when the reader asked for it (the next-case time counts from there). */
async function goTo(i: number, keyAt: number, again = false): Promise<void> {
  if (i < 0 || i >= st.cases.length) { if (i >= st.cases.length) caseMessage(s.endOfList); return; }
  const seq = ++st.seq;
  // the toast and its undo last until the reader moves on from the case the recording led to
  if (st.toast && !again) hideToast();
  st.index = i;
  const c = st.cases[i];
  st.openedAt = performance.now();
  st.panel = { ...st.panel, c, draft: emptyDraft(), amending: false, problem: undefined, busy: false, normalFrom: undefined };
  st.shownCase = undefined;
  delete document.body.dataset.caseShown;
  document.body.dataset.case = c.id;
  for (const [id, it] of st.items) it.li.classList.toggle('shown', id === c.id);
  st.items.get(c.id)?.li.scrollIntoView({ block: 'nearest' });
  $('case-pos').textContent = s.caseOf(i + 1, st.cases.length);
  renderPatient(c);
  caseMessage('');
  panel();
  const grid = st.grid!;
  if (c.state !== 'ready' || !c.sessionId) {
    for (let k = 0; k < grid.size; k++) grid.clear(k);
    caseMessage(c.state === 'failed' ? s.caseFailed(c.error ?? '') : s.caseNotReady(s.caseState[c.state], c.instances.done, c.instances.total));
    void renderReport($('report'), undefined).then(() => reportPlaceholder());
    armGuard(seq);
    prefetchAround(i);
    return;
  }
  let lc: LoadedCase;
  try {
    lc = await st.loader!.load(c);
  } catch (e) {
    if (seq !== st.seq) return;
    caseMessage(e instanceof UserError ? e.message : t.errors.server);
    armGuard(seq);
    return;
  }
  if (seq !== st.seq) return;
  renderPatient(c, lc);
  const withPrior = lc.priorItems.length > 0;
  // always 2×4, the views at the same places case after case (the bottom row says when there is no prior);
  // a layout change also makes every viewport again
  const slots = hangMammo(lc.currentItems, lc.priorItems, 'over-prior', (v) => (withPrior ? t.priorView(v, fmtDate(lc.prior?.date)) : `${v} · ${s.noPriorShort}`));
  if (grid.layout !== '2x4') grid.setLayout('2x4');
  if (!withPrior) caseMessage(s.noPrior);
  if (!lc.currentItems.length) caseMessage(t.errors.noImages);
  const loadedAt = performance.now();
  await showSlots(grid, slots, true);
  if (seq !== st.seq) return;
  const placedAt = performance.now();
  await drawn(grid, seq);
  if (seq !== st.seq) return;
  const now = performance.now();
  st.nextCaseMs.push(Math.round(now - keyAt));
  st.phases.push({ load: Math.round(loadedAt - keyAt), place: Math.round(placedAt - loadedAt), draw: Math.round(now - placedAt) });
  // the report after the images: a PDF's frame is costly to lay out, and the images are what the reader looks at first
  void renderReport($('report'), lc.current).then(() => { if (!lc.current?.report) reportPlaceholder(); });
  st.shownCase = c.id;
  document.body.dataset.caseShown = c.id;
  armGuard(seq);
  prefetchAround(i);
  if (!st.tools) { st.tools = true; void import('../tools.js').then((m) => { m.initTools(); document.body.dataset.tools = 'ready'; }, () => showError(t.errors.tools)); }
}

/** Resolves once every filled cell has drawn its image (or has failed to). */
function drawn(grid: Grid, seq: number): Promise<void> {
  return new Promise((resolve) => {
    const started = performance.now();
    const check = () => {
      if (seq !== st.seq) { resolve(); return; }
      const filled = grid.cells.filter((c) => c.series && !c.error);
      if (filled.every((c) => c.firstRenderAt) || performance.now() - started > 60_000) { resolve(); return; }
      requestAnimationFrame(check);
    };
    check();
  });
}

/** The quick "normal" key becomes active NORMAL_GUARD_MS after the case is shown; the button shows the wait. */
function armGuard(seq: number): void {
  st.panel.normalFrom = performance.now() + NORMAL_GUARD_MS;
  panel();
  // only the button changes: a whole new panel would take the focus from a field being typed in
  setTimeout(() => {
    const b = document.getElementById('key-normal');
    if (seq !== st.seq || !b) return;
    b.removeAttribute('data-waiting');
    b.textContent = s.normalKey;
  }, NORMAL_GUARD_MS + 20);
}

function prefetchAround(i: number): void {
  const keep = new Set<string>();
  for (let k = Math.max(0, i - 1); k <= Math.min(st.cases.length - 1, i + AHEAD); k++) {
    const c = st.cases[k];
    if (!c.sessionId || c.state !== 'ready') continue;
    keep.add(c.sessionId);
    if (k > i) void st.loader!.load(c).catch(() => undefined);
  }
  st.loader!.retain(keep);
}

function renderPatient(c: Case, lc?: LoadedCase): void {
  const p = lc?.session.patient;
  const trait = (label: string, value: string) => el('span', { class: 'trait' }, el('span', { class: 'trait-label' }, `${label} : `), el('strong', {}, value));
  $('patient').replaceChildren(
    trait(t.birthName, (p?.birthName ?? c.patient.familyName ?? '').toUpperCase()),
    trait(t.givenName, p?.givenNames[0] ?? c.patient.givenName ?? ''),
    trait(t.birthDate, fmtDate(p?.birthDate ?? c.patient.birthDate)),
    trait(t.ins, p?.ins.value ?? c.patient.ins),
    ...(lc?.current ? [trait(s.current, `${fmtDate(lc.current.date)} ${lc.current.sourceCentre}`)] : []));
}

function reportPlaceholder(): void {
  const r = $('report');
  r.hidden = false;
  r.replaceChildren(el('h2', {}, s.report), el('p', { class: 'none' }, s.noReport));
}

function panel(): void { renderPanel($('verdict'), st.panel, actions); }

const actions = {
  setMode(m: PanelState['draft']['mode']) {
    if (st.panel.c?.verdict && !st.panel.amending) { problem(s.problems.already); return; }
    st.panel.draft.mode = st.panel.draft.mode === m ? 'normal' : m;
    st.panel.problem = undefined;
    panel();
    if (m === 'defer' && st.panel.draft.reason === 'other') $('comment').focus();
  },
  quickNormal() { void quickNormal(); },
  submit() { void submit(); },
  cancel() { cancel(); },
  amend() { amend(); },
  undefer() { void runUndefer(); },
  chooseBreast(b: Breast) { st.panel.draft.breast = b; panel(); },
  changed() { st.panel.problem = undefined; panel(); },
};

function problem(text: string): void { st.panel.problem = text; panel(); }
const guardActive = () => st.panel.normalFrom === undefined || performance.now() < st.panel.normalFrom;

/** N: adequate and normal, recorded at once, then the next case. Does nothing in the first 2 s of a case. */
async function quickNormal(): Promise<void> {
  if (st.panel.amending) { st.panel.draft.mode = 'normal'; panel(); return; }
  if (st.panel.c?.verdict) { problem(s.problems.already); return; }
  if (guardActive()) { problem(s.problems.guard); return; }
  st.panel.draft.mode = 'normal';
  await submit();
}

async function submit(): Promise<void> {
  const c = st.panel.c;
  const b = st.batch;
  if (!c || !b || st.panel.busy) return;
  if (st.panel.closed) { problem(s.problems.closed); return; }
  const d = st.panel.draft;
  if (d.mode === 'defer') { await runDefer(c); return; }
  if (c.verdict && !st.panel.amending) { problem(s.problems.already); return; }
  if (st.shownCase !== c.id) { problem(s.problems.notReady); return; }
  if (d.mode === 'normal' && !st.panel.amending && guardActive()) { problem(s.problems.guard); return; }
  const spent = performance.now() - st.openedAt + (st.panel.amending ? c.verdict?.timeSpentMs ?? 0 : 0);
  const built = buildVerdict(d, crypto.randomUUID(), spent);
  if ('problem' in built) { problem(built.problem); return; }
  st.panel.busy = true;
  panel();
  const at = st.index;
  try {
    const v = st.panel.amending ? await amendVerdict(b.id, c.id, built.input) : await recordVerdict(b.id, c.id, built.input);
    const updated = { ...c, verdict: v, deferral: null };
    replaceCase(updated);
    if (st.panel.amending) {
      st.panel = { ...st.panel, c: updated, amending: false, busy: false, problem: undefined, draft: emptyDraft() };
      showToast({ caseId: c.id, kind: 'verdict', text: s.amended(describeVerdict(v)) }, false);
      panel();
      return;
    }
    showToast({ caseId: c.id, kind: 'verdict', text: s.recorded(describeVerdict(v), `${s.caseOf(at + 1, st.cases.length)} · ${patientName(c)}`) }, true);
    await goTo(at + 1, performance.now(), true);
  } catch (e) {
    st.panel.busy = false;
    if (e instanceof UserError && e.status === 409) {
      // recorded meanwhile (another tab, another click): the case as stored, with its verdict to amend
      await refreshCase(c.id);
      problem(st.panel.amending ? s.problems.closed : s.problems.already);
      return;
    }
    problem(e instanceof UserError ? e.message : t.errors.server);
  }
}

async function runDefer(c: Case): Promise<void> {
  const d = st.panel.draft;
  if (!d.reason) { problem(s.problems.reason); return; }
  if (d.reason === 'other' && !d.comment.trim()) { problem(s.problems.otherComment); $('comment').focus(); return; }
  st.panel.busy = true;
  panel();
  const at = st.index;
  try {
    await deferCase(st.batch!.id, c.id, d.reason, d.comment.trim() || undefined);
    replaceCase({ ...c, deferral: { reason: d.reason, ...(d.comment.trim() ? { comment: d.comment.trim() } : {}), at: new Date().toISOString() } });
    showToast({ caseId: c.id, kind: 'defer', text: s.recorded(s.deferred(s.deferReason[d.reason]), `${s.caseOf(at + 1, st.cases.length)} · ${patientName(c)}`) }, true);
    await goTo(at + 1, performance.now(), true);
  } catch (e) {
    st.panel.busy = false;
    problem(e instanceof UserError ? e.message : t.errors.server);
  }
}

async function runUndefer(): Promise<void> {
  const c = st.panel.c;
  if (!c?.deferral) return;
  try {
    await undefer(st.batch!.id, c.id);
    replaceCase({ ...c, deferral: null });
    st.panel.c = st.cases[st.index];
    panel();
  } catch (e) { problem(e instanceof UserError ? e.message : t.errors.server); }
}

function replaceCase(c: Case): void {
  const i = st.cases.findIndex((x) => x.id === c.id);
  if (i >= 0) st.cases[i] = c;
  st.items.get(c.id)?.set(c);
}

async function refreshCase(id: string): Promise<void> {
  try {
    const full = await getBatch(st.batch!.id);
    st.panel.closed = full.state === 'closed';
    const c = full.cases.find((x) => x.id === id);
    if (c) { replaceCase(c); if (st.panel.c?.id === id) st.panel = { ...st.panel, c, amending: false, draft: emptyDraft() }; }
  } catch { /* the problem line says what failed */ }
}

function amend(): void {
  const c = st.panel.c;
  if (!c?.verdict) return;
  if (st.panel.closed) { problem(s.problems.closed); return; }
  st.panel = { ...st.panel, amending: true, draft: draftFrom(c.verdict), problem: undefined };
  panel();
}

function cancel(): void {
  st.panel = { ...st.panel, amending: false, draft: emptyDraft(), problem: undefined };
  panel();
}

function showToast(toast: Toast, undoable: boolean): void {
  st.toast = undoable ? toast : undefined;
  const box = $('toast');
  const kids: (HTMLElement | string)[] = [el('span', { class: 'toast-text' }, toast.text)];
  if (undoable) { const u = el('button', { type: 'button', id: 'toast-undo' }, s.undo); u.onclick = () => void undo(); kids.push(u); }
  box.replaceChildren(...kids);
  box.hidden = false;
  box.dataset.case = toast.caseId;
  if (!undoable) setTimeout(() => { if (!st.toast && box.dataset.case === toast.caseId) box.hidden = true; }, 4000);
}

function hideToast(): void { st.toast = undefined; $('toast').hidden = true; }

/** Ctrl+Z or the toast's button: the verdict (or deferral) just recorded is withdrawn and its case shown again. */
async function undo(): Promise<void> {
  const toast = st.toast;
  if (!toast || st.panel.busy) return;
  const i = st.cases.findIndex((c) => c.id === toast.caseId);
  try {
    if (toast.kind === 'verdict') await undoVerdict(st.batch!.id, toast.caseId);
    else await undefer(st.batch!.id, toast.caseId);
  } catch (e) {
    problem(e instanceof UserError ? e.message : t.errors.server);
    return;
  }
  hideToast();
  replaceCase({ ...st.cases[i], verdict: null, deferral: null });
  await goTo(i, performance.now(), true);
  st.panel.problem = s.undone;
  panel();
}

function bindKeys(): void {
  document.addEventListener('keydown', (e) => {
    const k = e.key;
    const lower = k.toLowerCase();
    const inField = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
    if (inField) {
      // typing: Enter records (Shift+Enter a new line in the comment), Escape leaves the field
      if (k === 'Enter' && !e.shiftKey) { e.preventDefault(); (e.target as HTMLElement).blur(); void submit(); }
      else if (k === 'Escape') { e.preventDefault(); (e.target as HTMLElement).blur(); }
      return;
    }
    if (e.metaKey || e.altKey) return;
    if (e.ctrlKey) {
      if (lower === 'z') { e.preventDefault(); void undo(); }
      return;
    }
    const d = st.panel.draft;
    const editing = !st.panel.c?.verdict || st.panel.amending;
    let handled = true;
    if (k === '?') $('help').hidden = !$('help').hidden;
    else if (k === 'Escape') { if (!$('help').hidden) $('help').hidden = true; else cancel(); }
    else if (k === 'PageDown') void goTo(st.index + 1, e.timeStamp);
    else if (k === 'PageUp') void goTo(st.index - 1, e.timeStamp);
    else if (editing && d.mode === 'positive' && (k === 'ArrowLeft' || k === 'ArrowRight')) actions.chooseBreast(k === 'ArrowLeft' ? 'right' : 'left'); // the right breast is on the viewer's left
    else if (k === 'ArrowRight') void goTo(st.index + 1, e.timeStamp);
    else if (k === 'ArrowLeft') void goTo(st.index - 1, e.timeStamp);
    else if (k === 'Enter') void submit();
    else if (lower === 'n' && !e.shiftKey) void quickNormal();
    else if (lower === 'a') amend();
    else if (lower === 'k') { if (editing) $('comment')?.focus(); }
    else if (lower === 'i') { const g = st.grid; if (g) for (const c of g.cells) { const vp = g.viewport(c.index); if (c.series && vp) { vp.setProperties({ invert: !vp.getProperties().invert }); vp.render(); } } }
    else if (!editing) handled = false;
    else if (d.mode === 'positive' && /^[345]$/.test(k)) { const b = d[d.breast]; const n = Number(k) as 3 | 4 | 5; b.acr = b.acr === n ? undefined : n; actions.changed(); }
    else if (d.mode === 'positive' && lower === 'l') $(`location-${d.breast}`).focus();
    else if (d.mode === 'positive' && SIGNS.some((x) => s.signKey[x].toLowerCase() === lower)) {
      const sign = SIGNS.find((x) => s.signKey[x].toLowerCase() === lower)!;
      const b = d[d.breast];
      b.signs = b.signs.includes(sign) ? b.signs.filter((x) => x !== sign) : [...b.signs, sign];
      actions.changed();
    } else if (d.mode === 'technical' && /^[1-4]$/.test(k)) { const v = VIEWS[Number(k) - 1]; d.views = d.views.includes(v) ? d.views.filter((x) => x !== v) : [...d.views, v]; actions.changed(); }
    else if (d.mode === 'defer' && /^[1-4]$/.test(k)) { d.reason = DEFER_REASONS[Number(k) - 1]; actions.changed(); if (d.reason === 'other') $('comment').focus(); }
    else if (lower === 'p') actions.setMode('positive');
    else if (lower === 't') actions.setMode('technical');
    else if (lower === 'd' && !st.panel.amending) actions.setMode('defer');
    else handled = false;
    if (handled) e.preventDefault();
  });
}

/** Read-only view of the worklist for end-to-end tests and the bench. */
(window as unknown as { __screening: unknown }).__screening = {
  get index() { return st.index; },
  get caseId() { return st.cases[st.index]?.id; },
  get shownCase() { return st.shownCase; },
  get nextCaseMs() { return [...st.nextCaseMs]; },
  /** the images of case i are all in the cache (the bench measures "next case" on cached cases) */
  isCached(i: number) { const id = st.cases[i]?.sessionId; return !!id && !!st.loader?.isCached(id); },
  /** every case the worklist fetches ahead of the one shown is in the cache: no fetch or decode is running */
  prefetchIdle() {
    for (let k = st.index + 1; k <= Math.min(st.cases.length - 1, st.index + AHEAD); k++) {
      const c = st.cases[k];
      if (c.state === 'ready' && c.sessionId && !st.loader?.isCached(c.sessionId)) return false;
    }
    return true;
  },
  get phases() { return [...st.phases]; },
  get count() { return st.cases.length; },
  get renderPath() { return st.rendering ? (st.rendering.cpu ? 'cpu' : 'webgl') : undefined; },
  cells() {
    const g = st.grid;
    return g ? g.cells.map((c) => ({ index: c.index, label: c.overlays.label.textContent, studyUid: c.series?.studyUid, rendered: !!c.firstRenderAt, error: c.error, flipHorizontal: !!g.viewport(c.index)?.getCamera().flipHorizontal })) : [];
  },
};
