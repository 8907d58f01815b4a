// The reader's verdict as typed in the panel (a draft) and what the API receives: pure, no DOM.
import { s } from './i18n.js';
import type { BreastFinding, DeferReason, Sign, Verdict, VerdictInput, View } from './types.js';

/** in the hanging's order (top row): keys 1 to 4 */
export const VIEWS: View[] = ['R-CC', 'L-CC', 'R-MLO', 'L-MLO'];
export const SIGNS: Sign[] = ['mass', 'calcifications', 'distortion', 'asymmetry'];
export const DEFER_REASONS: DeferReason[] = ['missing-view', 'views-swapped', 'priors-awaited', 'other'];
export type Breast = 'right' | 'left';
export type Mode = 'normal' | 'positive' | 'technical' | 'defer';

export interface BreastDraft { acr?: 3 | 4 | 5; location: string; signs: Sign[] }
export interface Draft {
  mode: Mode;
  breast: Breast;
  right: BreastDraft;
  left: BreastDraft;
  views: View[];
  reason?: DeferReason;
  comment: string;
}

export const emptyDraft = (): Draft => ({ mode: 'normal', breast: 'right', right: { location: '', signs: [] }, left: { location: '', signs: [] }, views: [], comment: '' });

const QUADRANTS: Record<string, string> = { qse: 'QSE', qsi: 'QSI', qie: 'QIE', qii: 'QII', central: 'central', centrale: 'central', ra: 'rétro-aréolaire', retro: 'rétro-aréolaire', 'retro-areolaire': 'rétro-aréolaire' };

/** A location as the API names it ('QSE' … 'rétro-aréolaire', or a clock hour '1'…'12'), from what the reader typed; undefined when not one. */
export function parseLocation(text: string): string | undefined {
  const v = text.trim().toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/\s+/g, '-');
  if (QUADRANTS[v]) return QUADRANTS[v];
  const h = /^(\d{1,2})(h|-h|-heures?)?$/.exec(v);
  if (h && Number(h[1]) >= 1 && Number(h[1]) <= 12) return String(Number(h[1]));
  return undefined;
}

const toggle = <T>(list: T[], x: T): T[] => (list.includes(x) ? list.filter((y) => y !== x) : [...list, x]);
export const toggleSign = (b: BreastDraft, sign: Sign): BreastDraft => ({ ...b, signs: toggle(b.signs, sign) });
export const toggleView = (d: Draft, v: View): Draft => ({ ...d, views: toggle(d.views, v) });

/** Is this breast filled in at all (a category, a location or a sign)? */
const touched = (b: BreastDraft) => b.acr !== undefined || b.location.trim() !== '' || b.signs.length > 0;

/** The API's verdict for the draft, or the first thing the reader must still give (French). */
export function buildVerdict(d: Draft, requestId: string, timeSpentMs: number): { input: VerdictInput } | { problem: string } {
  const comment = d.comment.trim() ? { comment: d.comment.trim() } : {};
  const base = { requestId, timeSpentMs: Math.max(0, Math.round(timeSpentMs)), ...comment };
  if (d.mode === 'technical') {
    if (!d.views.length) return { problem: s.problems.views };
    return { input: { ...base, quality: 'insufficient', viewsToRedo: VIEWS.filter((v) => d.views.includes(v)) } };
  }
  if (d.mode === 'positive') {
    const findings: { right?: BreastFinding; left?: BreastFinding } = {};
    for (const side of ['right', 'left'] as const) {
      const b = d[side];
      if (!touched(b)) continue;
      const label = side === 'right' ? s.right : s.left;
      if (b.acr === undefined) return { problem: s.problems.acr(label) };
      const location = parseLocation(b.location);
      if (!location) return { problem: s.problems.location(label) };
      if (!b.signs.length) return { problem: s.problems.signs(label) };
      findings[side] = { acr: b.acr, location, signs: SIGNS.filter((x) => b.signs.includes(x)) };
    }
    if (!findings.right && !findings.left) return { problem: s.problems.breast };
    return { input: { ...base, quality: 'adequate', result: 'positive', ...findings } };
  }
  return { input: { ...base, quality: 'adequate', result: 'normal' } };
}

/** The draft that shows a recorded verdict again (to amend it). */
export function draftFrom(v: Verdict): Draft {
  const d = emptyDraft();
  d.comment = v.comment ?? '';
  if (v.quality === 'insufficient') return { ...d, mode: 'technical', views: [...(v.viewsToRedo ?? [])] };
  if (v.result === 'positive') {
    const b = (f?: BreastFinding): BreastDraft => (f ? { acr: f.acr, location: f.location, signs: [...f.signs] } : { location: '', signs: [] });
    return { ...d, mode: 'positive', right: b(v.right), left: b(v.left), breast: v.right ? 'right' : 'left' };
  }
  return d;
}

const finding = (label: string, f?: BreastFinding) => (f ? `${label} ACR ${f.acr}, ${/^\d+$/.test(f.location) ? `${f.location} h` : f.location}, ${f.signs.map((x) => s.sign[x].toLowerCase()).join(', ')}` : '');

/** One line saying what a verdict records ("Normal", "Positif — sein droit ACR 4, QSE, masse"). */
export function describeVerdict(v: Pick<VerdictInput, 'quality' | 'result' | 'viewsToRedo' | 'right' | 'left' | 'comment'>): string {
  let text: string;
  if (v.quality === 'insufficient') text = `${s.technical} : ${(v.viewsToRedo ?? []).map((x) => s.viewShort[x]).join(', ')}`;
  else if (v.result === 'positive') text = `${s.positive} — ${[finding(s.right.toLowerCase(), v.right), finding(s.left.toLowerCase(), v.left)].filter(Boolean).join(' ; ')}`;
  else text = s.normal;
  return v.comment ? `${text} (« ${v.comment} »)` : text;
}
