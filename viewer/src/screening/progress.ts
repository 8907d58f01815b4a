// Progress bars of the screening pages: a batch's or a case's instances fetched, with bytes and state in words.
import { el } from '../panels.js';
import { s } from './i18n.js';
import type { Batch, Case } from './types.js';

/** A <progress> with its text beside, updated in place by `set`. */
export function progressBar(cls: string): { root: HTMLElement; set(done: number, total: number, text: string): void } {
  const bar = el('progress', { max: '1', value: '0' });
  const text = el('span', { class: 'progress-text' });
  const root = el('span', { class: `progress ${cls}` }, bar, text);
  return {
    root,
    set(done, total, words) {
      bar.max = Math.max(1, total);
      bar.value = Math.min(done, Math.max(1, total));
      root.dataset.done = String(done);
      root.dataset.total = String(total);
      text.textContent = words;
    },
  };
}

export const batchProgressText = (b: Batch) => `${s.instancesOf(b.instances.done, b.instances.total)} · ${s.mb(b.bytes.done, b.bytes.total)} · ${s.counts(b.counts)}`;

export function caseProgressText(c: Case): string {
  if (c.state === 'failed') return `${s.caseState.failed} : ${c.error ?? ''}`;
  if (c.state === 'queued') return s.caseState.queued;
  return `${s.caseState[c.state]} · ${s.instancesOf(c.instances.done, c.instances.total)} · ${s.mb(c.bytes.done, c.bytes.total)}`;
}

/** "DUPONT Marie" or the INS when the batch gave no name */
export const patientName = (c: Case) => [c.patient.familyName?.toUpperCase(), c.patient.givenName].filter(Boolean).join(' ') || `INS ${c.patient.ins}`;
