// What the viewer shows of the consumer's identity checks (INS rules): a warning under the patient
// banner naming the strict traits the call gives differently from the images, and, on each refused
// study of the list, its reason instead of a way to open it.
import type { Session } from './api.js';
import { el } from './panels.js';

export function renderIdentityNotices(banner: HTMLElement, items: Map<string, HTMLElement>, session: Session): void {
  const differing = new Map<string, { label: string; call: string; images: string }>();
  for (const s of session.studies) for (const w of s.identityWarnings ?? []) differing.set(w.trait, w);
  if (differing.size) {
    const list = [...differing.values()].map((w) => `${w.label} (appel : ${w.call} ; images : ${w.images})`).join(', ');
    banner.append(el('div', { class: 'identity-warning', role: 'alert', 'data-identity-warning': [...differing.keys()].join(' ') },
      `Attention, identité à vérifier : ${list}.`));
  }
  for (const s of session.studies) {
    const li = items.get(s.studyUid);
    if (s.status !== 'refused' || !li) continue;
    // a fresh copy drops the click handlers: a refused study cannot be opened
    const copy = li.cloneNode(true) as HTMLElement;
    copy.removeAttribute('tabindex');
    copy.querySelector('button.compare')?.remove();
    copy.insertBefore(el('div', { class: 'study-msg', role: 'status' }, s.reason ?? "Incohérence d'identité : l'examen n'est pas affiché."), copy.querySelector('.series-list'));
    li.replaceWith(copy);
    items.set(s.studyUid, copy);
  }
}
