// The verdict panel beside the images: the recorded verdict (and how to amend it), or the form being
// filled in: mode (normal, positive per breast, technical recall with the views to redo, deferral with
// its reason), free comment. Rendered from the draft; the worklist's keys change the draft.
import { el } from '../panels.js';
import { s } from './i18n.js';
import { DEFER_REASONS, SIGNS, VIEWS, describeVerdict, type Breast, type Draft } from './verdict.js';
import type { Case, Reader } from './types.js';

export interface PanelState {
  c?: Case;
  draft: Draft;
  /** the form is open to amend the recorded verdict */
  amending: boolean;
  closed: boolean;
  reader?: Reader;
  problem?: string;
  busy: boolean;
  /** when the quick "normal" key becomes active (performance.now() time), undefined while the case is not shown */
  normalFrom?: number;
}

export interface PanelActions {
  setMode(m: Draft['mode']): void;
  quickNormal(): void;
  submit(): void;
  cancel(): void;
  amend(): void;
  undefer(): void;
  chooseBreast(b: Breast): void;
  changed(): void;
}

const pressed = (yes: boolean): Record<string, string> => (yes ? { class: 'on', 'aria-pressed': 'true' } : { 'aria-pressed': 'false' });
const fmtAt = (iso: string) => new Date(iso).toLocaleString('fr-FR', { dateStyle: 'short', timeStyle: 'short' });

export function renderPanel(root: HTMLElement, st: PanelState, act: PanelActions): void {
  const c = st.c;
  const kids: (HTMLElement | string)[] = [el('h2', {}, s.verdict)];
  if (st.reader) kids.push(el('div', { class: 'reader-line', id: 'reader' }, `${s.reader} : ${st.reader.name} · RPPS ${st.reader.rpps}`));
  if (!c) { root.replaceChildren(...kids); return; }
  const button = (label: string, fn: () => void, attrs: Record<string, string> = {}) => { const b = el('button', { type: 'button', ...attrs }, label); b.onclick = fn; return b; };
  if (c.verdict && !st.amending) {
    const v = c.verdict;
    kids.push(el('div', { class: `recorded outcome-${v.outcome}`, id: 'recorded', 'data-outcome': v.outcome },
      el('strong', {}, describeVerdict(v)),
      el('div', { class: 'by' }, `${s.recordedBy(v.readerName, v.readerRpps, fmtAt(v.amendedAt ?? v.recordedAt))} · ${s.timeSpent(v.timeSpentMs)}`)));
    kids.push(button(s.amend, act.amend, { id: 'amend', ...(st.closed ? { disabled: '' } : {}) }));
  } else {
    if (c.deferral && !st.amending) kids.push(el('div', { class: 'deferred', id: 'deferred' }, s.deferred(s.deferReason[c.deferral.reason] + (c.deferral.comment ? ` — ${c.deferral.comment}` : '')), ' ', button(s.undefer, act.undefer, { id: 'undefer' })));
    kids.push(form(st, act, button));
  }
  if (st.problem) kids.push(el('div', { class: 'problem', role: 'alert', id: 'problem' }, st.problem));
  root.replaceChildren(...kids);
}

function form(st: PanelState, act: PanelActions, button: (l: string, f: () => void, a?: Record<string, string>) => HTMLElement): HTMLElement {
  const d = st.draft;
  const on = (m: Draft['mode']): Record<string, string> => pressed(d.mode === m);
  const wait = st.normalFrom === undefined || performance.now() < st.normalFrom;
  const normal = button(wait ? s.normalWait : s.normalKey, act.quickNormal, { id: 'key-normal', ...(wait ? { 'data-waiting': '' } : {}), ...(st.amending ? on('normal') : {}) });
  if (wait && st.normalFrom !== undefined) normal.style.setProperty('--guard-ms', `${Math.max(0, st.normalFrom - performance.now())}ms`);
  const modes = el('div', { class: 'modes', role: 'group', 'aria-label': s.quality },
    normal,
    button(s.positiveKey, () => act.setMode('positive'), { id: 'mode-positive', ...on('positive') }),
    button(s.technicalKey, () => act.setMode('technical'), { id: 'mode-technical', ...on('technical') }),
    ...(st.amending ? [] : [button(s.deferKey, () => act.setMode('defer'), { id: 'mode-defer', ...on('defer') })]));
  const parts: HTMLElement[] = [modes];
  if (d.mode === 'positive') parts.push(el('div', { class: 'breasts' }, breast(st, 'right', act, button), breast(st, 'left', act, button)));
  if (d.mode === 'technical') {
    parts.push(el('fieldset', { class: 'views' }, el('legend', {}, s.views),
      ...VIEWS.map((v, i) => button(`${i + 1} · ${s.view[v]}`, () => { d.views = d.views.includes(v) ? d.views.filter((x) => x !== v) : [...d.views, v]; act.changed(); }, { 'data-view': v, ...pressed(d.views.includes(v)) }))));
  }
  if (d.mode === 'defer') {
    parts.push(el('fieldset', { class: 'reasons' }, el('legend', {}, s.deferTitle),
      ...DEFER_REASONS.map((r, i) => button(`${i + 1} · ${s.deferReason[r]}`, () => { d.reason = r; act.changed(); }, { 'data-reason': r, ...pressed(d.reason === r) }))));
  }
  const comment = el('textarea', { id: 'comment', rows: '2', maxlength: '2000', 'aria-label': s.comment, placeholder: `${s.comment} (K)` });
  comment.value = d.comment;
  comment.oninput = () => { d.comment = comment.value; };
  parts.push(comment, el('div', { class: 'form-actions' },
    button(st.amending ? s.saveAmend : s.record, act.submit, { id: 'submit', class: 'primary', ...(st.busy ? { disabled: '' } : {}) }),
    ...(st.amending || d.mode !== 'normal' ? [button(s.cancelForm, act.cancel, { id: 'cancel' })] : [])));
  return el('div', { class: `verdict-form mode-${d.mode}`, id: 'verdict-form', 'data-mode': d.mode }, ...parts);
}

function breast(st: PanelState, side: Breast, act: PanelActions, button: (l: string, f: () => void, a?: Record<string, string>) => HTMLElement): HTMLElement {
  const b = st.draft[side];
  const location = el('input', { id: `location-${side}`, class: 'location', 'aria-label': `${s.location} — ${side === 'right' ? s.right : s.left}`, placeholder: s.locationHint, list: 'locations' });
  location.value = b.location;
  location.oninput = () => { b.location = location.value; };
  location.onfocus = () => { if (st.draft.breast !== side) act.chooseBreast(side); };
  const box = el('fieldset', { class: `breast${st.draft.breast === side ? ' active' : ''}`, 'data-breast': side },
    el('legend', {}, `${side === 'right' ? s.right : s.left}${st.draft.breast === side ? ' ◀' : ''}`),
    el('div', { class: 'acr' }, `${s.acr} : `, ...([3, 4, 5] as const).map((n) => button(String(n), () => { b.acr = b.acr === n ? undefined : n; act.chooseBreast(side); }, { 'data-acr': String(n), ...pressed(b.acr === n) }))),
    el('label', { class: 'loc' }, `${s.location} (L) `, location),
    el('div', { class: 'signs' }, ...SIGNS.map((x) => button(`${s.signKey[x]} · ${s.sign[x]}`, () => { b.signs = b.signs.includes(x) ? b.signs.filter((y) => y !== x) : [...b.signs, x]; act.chooseBreast(side); }, { 'data-sign': x, ...pressed(b.signs.includes(x)) }))));
  box.onclick = (e) => { if (e.target === box) act.chooseBreast(side); };
  return box;
}
