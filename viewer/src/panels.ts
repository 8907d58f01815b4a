// DOM pieces around the images: patient banner, study list, report panel, import progress, help.
import { t } from './i18n.js';
import { request, startImport, importStatus, logout, UserError, type Session, type StudyRef } from './api.js';

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export const fmtDate = (d?: string) => (d && /^\d{8}$/.test(d) ? `${d.slice(6, 8)}/${d.slice(4, 6)}/${d.slice(0, 4)}` : d ?? '');

function trait(label: string, value: string, id: string): HTMLElement {
  return el('span', { class: 'trait', 'data-trait': id }, el('span', { class: 'trait-label' }, label + ' : '), el('strong', {}, value));
}

/** INS identity traits: birth name, first given name, birth date, sex, birth place; the rest on demand. */
export function renderBanner(root: HTMLElement, s: Session): void {
  const p = s.patient;
  const main = el('div', { class: 'traits' },
    trait(t.birthName, p.birthName.toUpperCase(), 'birthName'),
    trait(t.givenName, p.givenNames[0] ?? '', 'givenName'),
    trait(t.birthDate, fmtDate(p.birthDate), 'birthDate'),
    trait(t.sex, t.sexLabel[p.sex] ?? p.sex, 'sex'),
    ...(p.birthPlace ? [trait(t.birthPlace, p.birthPlace, 'birthPlace')] : []));
  const more = el('div', { class: 'traits more', hidden: '' },
    trait(t.ins, p.ins.value, 'ins'),
    trait(t.insOid, p.ins.oid, 'insOid'),
    trait(t.givenNames, p.givenNames.join(' '), 'givenNames'),
    ...(p.usedName ? [trait(t.usedName, p.usedName.toUpperCase(), 'usedName')] : []),
    ...(p.ipp ? [trait(t.ipp, p.ipp, 'ipp')] : []));
  const toggle = el('button', { class: 'link', id: 'more-traits', 'aria-expanded': 'false' }, t.moreTraits);
  toggle.onclick = () => {
    const open = more.hidden;
    more.hidden = !open;
    toggle.textContent = open ? t.lessTraits : t.moreTraits;
    toggle.setAttribute('aria-expanded', String(open));
  };
  const logoutBtn = el('button', { id: 'logout' }, t.logout);
  logoutBtn.onclick = async () => { location.href = await logout(s.logoutUrl); };
  const clinician = el('div', { class: 'clinician' }, `${t.clinician} : `, el('strong', {}, s.clinician.name));
  root.replaceChildren(el('div', { class: 'identity' }, main, more), toggle, el('div', { class: 'spacer' }), clinician, logoutBtn);
}

export interface StudyListHandlers {
  open(study: StudyRef): void;
  compare(study: StudyRef): void;
}

export function renderStudyList(root: HTMLElement, studies: StudyRef[], handlers: StudyListHandlers): Map<string, HTMLElement> {
  const items = new Map<string, HTMLElement>();
  const list = el('ul', { class: 'studies' });
  const sorted = [...studies].sort((a, b) => Number(b.current) - Number(a.current) || b.date.localeCompare(a.date));
  for (const s of sorted) {
    const li = el('li', { class: `study status-${s.status}`, 'data-study': s.studyUid });
    const head = el('div', { class: 'study-head' },
      el('span', { class: 'date' }, fmtDate(s.date)),
      el('span', { class: 'mod' }, s.modalities.join('/')),
      ...(s.report ? [el('span', { class: 'report-icon', title: t.reportAvailable, 'aria-label': t.reportAvailable }, 'CR')] : []),
      ...(s.current ? [el('span', { class: 'badge' }, t.current)] : []));
    li.append(head, el('div', { class: 'desc' }, s.description), el('div', { class: 'centre' }, s.sourceCentre));
    if (s.status === 'withdrawn') li.append(el('div', { class: 'study-msg', role: 'status' }, t.withdrawn));
    else if (s.status === 'unreachable') li.append(el('div', { class: 'study-msg', role: 'status' }, t.unreachable));
    else {
      li.tabIndex = 0;
      li.onclick = () => handlers.open(s);
      if (!s.current) {
        const cmp = el('button', { class: 'compare' }, t.compare);
        cmp.onclick = (e) => { e.stopPropagation(); handlers.compare(s); };
        li.append(cmp);
      }
    }
    li.append(el('div', { class: 'series-list' }));
    items.set(s.studyUid, li);
    list.append(li);
  }
  root.replaceChildren(el('h2', {}, t.studies), list);
  return items;
}

export async function renderReport(root: HTMLElement, study: StudyRef | undefined): Promise<void> {
  if (!study?.report) { root.replaceChildren(); root.hidden = true; document.body.classList.remove('with-report'); return; }
  const { url, mediaType } = study.report;
  const title = el('h2', {}, `${t.reportTitle} — ${fmtDate(study.date)}`);
  root.hidden = false;
  document.body.classList.add('with-report');
  if (mediaType === 'text/plain') {
    const pre = el('pre', { class: 'report-text' }, t.loading);
    root.replaceChildren(title, pre);
    try { pre.textContent = await (await request(url)).text(); } catch (e) { pre.textContent = e instanceof UserError ? e.message : t.errors.server; }
  } else if (mediaType === 'application/pdf') {
    root.replaceChildren(title, el('iframe', { class: 'report-frame', src: url, title: t.reportTitle }));
  } else {
    // HTML reports come from other centres: no scripts, no same-origin access
    root.replaceChildren(title, el('iframe', { class: 'report-frame', src: url, sandbox: '', title: t.reportTitle }));
  }
}

export async function runImport(root: HTMLElement, importUrl: string, studyUid: string, measurements?: string): Promise<void> {
  const bar = el('progress', { max: '1', value: '0' });
  const text = el('span', { class: 'import-text' }, t.importing);
  root.replaceChildren(bar, text);
  root.hidden = false;
  try {
    const jobId = await startImport(importUrl, studyUid, undefined, measurements);
    for (;;) {
      const job = await importStatus(importUrl, jobId);
      bar.max = Math.max(1, job.total);
      bar.value = job.stored + job.failed;
      text.textContent = t.importProgress(job.stored, job.total, job.failed);
      // any terminal state ends the polling (a job a restart interrupted reads failed)
      if (job.done || job.state !== 'running') {
        text.textContent = `${job.failed || job.state === 'failed' ? t.importFailed : t.imported} — ${t.importProgress(job.stored, job.total, job.failed)}${job.error ? ` (${job.error})` : ''}`;
        root.dataset.state = job.failed || job.state === 'failed' ? 'failed' : 'done';
        return;
      }
      await new Promise((r) => setTimeout(r, 400));
    }
  } catch (e) {
    text.textContent = `${t.importFailed} : ${e instanceof UserError ? e.message : t.errors.server}`;
    root.dataset.state = 'failed';
  }
}

/** The keyboard help: the viewer's shortcuts, or a page's own (the screening worklist's). */
export function renderHelp(root: HTMLElement, shortcuts: [string, string][] = t.shortcuts): void {
  const close = el('button', { class: 'close' }, t.close);
  close.onclick = () => { root.hidden = true; };
  const rows = shortcuts.map(([k, d]) => el('tr', {}, el('th', {}, el('kbd', {}, k)), el('td', {}, d)));
  root.replaceChildren(el('div', { class: 'help-box', role: 'dialog', 'aria-label': t.helpTitle }, el('h2', {}, t.helpTitle), el('table', {}, ...rows), close));
}
