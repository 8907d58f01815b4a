// DICOM tag browser for the image shown: its attributes (WADO-RS metadata, DICOM JSON) with their
// dictionary names, searchable by tag or name, sequences expandable. Names from dcmjs's dictionary
// through @cornerstonejs/metadata.
import { utilities as mdUtils } from '@cornerstonejs/metadata';
import type { DicomJson } from './dicom-json.js';
import { el } from './panels.js';
import { t } from './i18n.js';

const fmtTag = (hex: string) => `(${hex.slice(0, 4)},${hex.slice(4, 8)})`.toUpperCase();
const nameOf = (hex: string) => mdUtils.Tags.dictionaryLookup(fmtTag(hex))?.name ?? (parseInt(hex.slice(0, 4), 16) % 2 ? 'Privé' : '');

function valueText(e: { vr: string; Value?: unknown[]; InlineBinary?: string; BulkDataURI?: string }): string {
  if (e.BulkDataURI || e.InlineBinary) return '(données binaires)';
  return (e.Value ?? []).map((v) => (v && typeof v === 'object' && 'Alphabetic' in v ? (v as { Alphabetic: string }).Alphabetic : String(v))).join(' \\ ');
}

function rows(ds: DicomJson, depth: number): HTMLElement[] {
  return Object.keys(ds).sort().map((hex) => {
    const e = ds[hex] as { vr: string; Value?: unknown[] };
    const head = [el('code', { class: 'tag' }, fmtTag(hex)), el('span', { class: 'tag-name' }, nameOf(hex)), el('span', { class: 'tag-vr' }, e.vr)];
    if (e.vr === 'SQ') {
      const items = (e.Value ?? []) as DicomJson[];
      return el('details', { class: 'tag-row tag-sq', 'data-tag': hex, 'data-depth': String(depth) },
        el('summary', {}, ...head, el('span', { class: 'tag-value' }, `${items.length} élément(s)`)),
        ...items.map((item, i) => el('div', { class: 'tag-item' }, el('div', { class: 'tag-item-head' }, `Élément ${i + 1}`), ...rows(item, depth + 1))));
    }
    return el('div', { class: 'tag-row', 'data-tag': hex, 'data-depth': String(depth) }, ...head, el('span', { class: 'tag-value' }, valueText(e)));
  });
}

/** Fills `root` with the browser for `meta`; Escape or the close button hides it. */
export function showTags(root: HTMLElement, meta: DicomJson, title: string): void {
  const search = el('input', { type: 'search', id: 'tags-search', placeholder: t.tagsSearch, 'aria-label': t.tagsSearch });
  const list = el('div', { class: 'tag-list' }, ...rows(meta, 0));
  const none = el('div', { class: 'tag-none', hidden: '' }, t.tagsNone);
  const close = el('button', { class: 'close', id: 'tags-close' }, t.close);
  close.onclick = () => { root.hidden = true; };
  search.addEventListener('input', () => {
    const q = search.value.trim().toLowerCase().replace(/[(),\s]/g, '');
    let shown = 0;
    // a row matches on its tag (hex, with or without punctuation) or its name; a sequence opens when a row inside it matches
    const match = (row: Element): boolean => {
      const hex = (row.getAttribute('data-tag') ?? '').toLowerCase();
      const name = (row.querySelector(':scope > .tag-name, :scope > summary > .tag-name')?.textContent ?? '').toLowerCase();
      let hit = !q || hex.includes(q) || name.includes(q);
      if (row.tagName === 'DETAILS') {
        let inner = false;
        for (const item of row.querySelectorAll(':scope > .tag-item')) for (const r of item.querySelectorAll(':scope > .tag-row')) inner = match(r) || inner;
        if (q) (row as HTMLDetailsElement).open = inner;
        hit ||= inner;
      }
      (row as HTMLElement).hidden = !hit;
      if (hit) shown++;
      return hit;
    };
    for (const r of list.querySelectorAll(':scope > .tag-row')) match(r);
    none.hidden = shown > 0;
  });
  root.replaceChildren(el('div', { class: 'tags-box', role: 'dialog', 'aria-label': title }, el('h2', {}, title), search, none, list, close));
  root.hidden = false;
  search.focus();
}
