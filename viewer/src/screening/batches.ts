// The batches page (/viewer/screening.html): the reading sessions with their live prefetch progress
// (Server-Sent Events), per batch and, unfolded, per case; a batch created from a CSV file.
import { el, fmtDate } from '../panels.js';
import { UserError } from '../api.js';
import { t } from '../i18n.js';
import { s } from './i18n.js';
import { batchAction, createFromCsv, getBatch, listBatches, me, resultsCsvUrl, watchBatch } from './client.js';
import { batchProgressText, caseProgressText, patientName, progressBar } from './progress.js';
import type { Batch, Case } from './types.js';

const $ = (id: string) => document.getElementById(id)!;
const LIVE: Batch['state'][] = ['prefetching', 'paused', 'psc-reconnect'];
/** an EventSource holds a connection: a few live batches at a time, the browser allows 6 per origin */
const MAX_STREAMS = 3;

interface Row { batch: Batch; tr: HTMLElement; cells: HTMLElement; update(b: Batch): void; stream?: EventSource; cases: Map<string, (c: Case) => void> }
const rows = new Map<string, Row>();

export async function startBatchesPage(): Promise<void> {
  document.title = s.batchesTitle;
  document.body.classList.add('screening-batches');
  const root = $('app');
  const who = el('div', { class: 'reader', id: 'reader' });
  const msg = el('div', { id: 'page-msg', class: 'page-msg', role: 'status', hidden: '' });
  const table = el('table', { class: 'batches', id: 'batches' });
  root.replaceChildren(
    el('header', { class: 'banner' }, el('h1', {}, s.batchesTitle), el('div', { class: 'spacer' }), who),
    el('main', { class: 'batches-main' }, createForm(msg), msg, el('h2', {}, s.batches), table),
  );
  me().then((r) => { who.textContent = `${s.reader} : ${r.name} (RPPS ${r.rpps})`; who.dataset.rpps = r.rpps; }, () => undefined);
  try {
    await renderTable(table);
  } catch (e) {
    say(msg, e instanceof UserError ? e.message : t.errors.server, true);
  }
}

function say(msg: HTMLElement, text: string, error = false): void {
  msg.textContent = text;
  msg.hidden = !text;
  msg.classList.toggle('error', error);
}

function createForm(msg: HTMLElement): HTMLElement {
  const name = el('input', { id: 'batch-name', name: 'name', required: '', maxlength: '200' });
  const due = el('input', { id: 'batch-due', name: 'dueDate', type: 'date' });
  const priors = el('input', { id: 'batch-priors', name: 'priorsWanted', type: 'number', min: '0', max: '5', value: '1' });
  const file = el('input', { id: 'batch-file', name: 'file', type: 'file', accept: '.csv,text/csv', required: '' });
  const submit = el('button', { type: 'submit', id: 'batch-create' }, s.submit);
  const form = el('form', { class: 'create', id: 'create-form' },
    el('h2', {}, s.create), el('p', { class: 'hint' }, s.createHint),
    el('label', {}, s.name, name), el('label', {}, s.dueDate, due), el('label', {}, s.priorsWanted, priors), el('label', {}, s.file, file), submit);
  form.onsubmit = async (e) => {
    e.preventDefault();
    const f = file.files?.[0];
    if (!f) return;
    submit.disabled = true;
    say(msg, s.creating);
    try {
      const b = await createFromCsv(f, { name: name.value.trim() || f.name, ...(due.value ? { dueDate: due.value } : {}), priorsWanted: Number(priors.value) || 0 });
      say(msg, s.created(b.name, b.counts.total, b.counts.failed));
      form.reset();
      await renderTable($('batches'));
    } catch (err) {
      say(msg, err instanceof UserError ? err.message : t.errors.server, true);
    } finally {
      submit.disabled = false;
    }
  };
  return form;
}

async function renderTable(table: HTMLElement): Promise<void> {
  const list = await listBatches();
  for (const r of rows.values()) r.stream?.close();
  rows.clear();
  const c = s.columns;
  const head = el('tr', {}, ...[c.name, c.state, c.progress, c.read, c.by, c.due, c.actions].map((h) => el('th', {}, h)));
  table.replaceChildren(el('thead', {}, head));
  if (!list.length) { table.append(el('tbody', {}, el('tr', {}, el('td', { colspan: '7', class: 'none' }, s.noBatches)))); return; }
  const body = el('tbody');
  table.append(body);
  for (const b of list) body.append(...makeRow(b));
  let streams = 0;
  for (const r of rows.values()) if (LIVE.includes(r.batch.state) && streams < MAX_STREAMS) { connect(r); streams++; }
}

function connect(r: Row): void {
  if (r.stream) return;
  r.stream = watchBatch(r.batch.id, { batch: (b) => r.update(b), case: (c) => showCase(r, c) });
}

function makeRow(b: Batch): HTMLElement[] {
  const bar = progressBar('batch-progress');
  const state = el('td', { class: 'state' });
  const read = el('td', { class: 'read' });
  const actions = el('td', { class: 'actions' });
  const tr = el('tr', { class: 'batch', 'data-batch': b.id },
    el('td', {}, el('a', { href: `?batch=${encodeURIComponent(b.id)}`, class: 'open', title: s.open }, b.name)),
    state, el('td', {}, bar.root), read,
    el('td', {}, b.createdBy.name), el('td', {}, b.dueDate ? fmtDate(b.dueDate.replace(/-/g, '').slice(0, 8)) : ''), actions);
  const cells = el('div', { class: 'case-rows' });
  const details = el('details', { class: 'cases' }, el('summary', {}, s.columns.cases), cells);
  const detailRow = el('tr', { class: 'batch-cases', 'data-batch-cases': b.id }, el('td', { colspan: '7' }, details));
  const row: Row = {
    batch: b, tr, cells, cases: new Map(),
    update(nb) {
      row.batch = nb;
      tr.dataset.state = nb.state;
      state.textContent = s.state[nb.state] + (nb.pauseReason && nb.state !== 'psc-reconnect' ? ` (${nb.pauseReason})` : '');
      bar.set(nb.instances.done, nb.instances.total, batchProgressText(nb));
      read.textContent = `${nb.counts.read} / ${nb.counts.total}${nb.counts.deferred ? ` · ${nb.counts.deferred} différés` : ''}`;
      actions.replaceChildren(...actionButtons(nb));
      if (!LIVE.includes(nb.state) && !details.open) { row.stream?.close(); row.stream = undefined; }
    },
  };
  row.update(b);
  // the cases' own bars: from the stream (one `case` event per case at connect), or once for a batch at rest
  details.addEventListener('toggle', () => {
    if (!details.open) return;
    if (LIVE.includes(row.batch.state)) connect(row);
    else void getBatch(b.id).then((full) => { for (const c of full.cases) showCase(row, c); }, () => undefined);
  });
  rows.set(b.id, row);
  return [tr, detailRow];
}

/** A case's line under its batch: updated in place, added the first time. */
function showCase(r: Row, c: Case): void {
  const update = r.cases.get(c.id);
  if (update) update(c); else addCase(r, c);
}

function addCase(r: Row, c: Case): void {
  const bar = progressBar('case-progress');
  const line = el('div', { class: 'case-row', 'data-case': c.id }, el('span', { class: 'pos' }, String(c.position)), el('span', { class: 'who' }, patientName(c)), bar.root);
  const update = (x: Case) => { line.dataset.state = x.state; bar.set(x.instances.done, x.instances.total, caseProgressText(x)); };
  update(c);
  r.cases.set(c.id, update);
  const after = [...r.cells.children].find((n) => Number((n as HTMLElement).querySelector('.pos')?.textContent) > c.position);
  r.cells.insertBefore(line, after ?? null);
}

function actionButtons(b: Batch): HTMLElement[] {
  const btn = (label: string, action: 'pause' | 'resume' | 'cancel' | 'close', confirmText?: string) => {
    const x = el('button', { type: 'button', 'data-action': action }, label);
    x.onclick = async () => {
      if (confirmText && !confirm(confirmText)) return;
      x.disabled = true;
      try {
        const nb = await batchAction(b.id, action);
        const r = rows.get(b.id);
        r?.update(nb);
        if (r && LIVE.includes(nb.state)) connect(r);
      } catch (e) {
        say($('page-msg'), e instanceof UserError ? e.message : t.errors.server, true);
        x.disabled = false;
      }
    };
    return x;
  };
  const out: HTMLElement[] = [el('a', { href: `?batch=${encodeURIComponent(b.id)}`, class: 'button' }, s.open)];
  if (b.state === 'prefetching') out.push(btn(s.pause, 'pause'));
  // the prefetch acts under its creator's PSC identity: a new login gives it a new one, then resume
  if (b.state === 'psc-reconnect') out.push(el('a', { href: `/auth/login?returnTo=${encodeURIComponent(location.pathname)}`, class: 'button', id: 'psc-login' }, s.reconnect));
  if (b.state === 'paused' || b.state === 'psc-reconnect') out.push(btn(s.resume, 'resume'));
  if (LIVE.includes(b.state)) out.push(btn(s.cancel, 'cancel'));
  if (b.state !== 'closed' && b.state !== 'cancelled') out.push(btn(s.close, 'close', s.confirmClose));
  out.push(el('a', { href: resultsCsvUrl(b.id), class: 'button', download: '' }, s.export));
  return out;
}
