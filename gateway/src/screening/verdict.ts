// A second reader's verdict: the input checked (400 problem+json in French naming the field) and its
// outcome — technical recall when the images are insufficient, else normal or positive. Pure.
import { HttpProblem } from '../http/problem.js';
import { DEFER_REASONS, QUADRANTS, SIGNS, VIEWS, type View, type BreastFinding, type DeferReason, type VerdictInput, type Verdict } from './types.js';

const bad = (detail: string) => new HttpProblem(400, 'Avis invalide', detail);
const REQUEST_ID = /^[A-Za-z0-9-]{8,64}$/;

function finding(side: string, v: unknown): BreastFinding {
  if (!v || typeof v !== 'object') throw bad(`${side} : un objet { acr, location, signs } est attendu`);
  const f = v as Record<string, unknown>;
  if (f.acr !== 3 && f.acr !== 4 && f.acr !== 5) throw bad(`${side}.acr : 3, 4 ou 5 attendu`);
  const loc = f.location;
  const clock = typeof loc === 'string' && /^(1[0-2]|[1-9])$/.test(loc);
  if (typeof loc !== 'string' || !(clock || (QUADRANTS as readonly string[]).includes(loc))) {
    throw bad(`${side}.location : un quadrant (${QUADRANTS.join(', ')}) ou une position horaire 1 à 12 attendu`);
  }
  if (!Array.isArray(f.signs) || f.signs.length === 0 || f.signs.some((s) => !(SIGNS as readonly unknown[]).includes(s))) {
    throw bad(`${side}.signs : au moins un signe parmi ${SIGNS.join(', ')}`);
  }
  return { acr: f.acr, location: loc, signs: [...new Set(f.signs as BreastFinding['signs'])] };
}

/** The checked input and its outcome (without who and when). */
export function checkVerdict(body: unknown): VerdictInput & { outcome: Verdict['outcome'] } {
  if (!body || typeof body !== 'object') throw bad('un objet JSON est attendu');
  const b = body as Record<string, unknown>;
  if (typeof b.requestId !== 'string' || !REQUEST_ID.test(b.requestId)) throw bad('requestId : un identifiant de requête (UUID) est attendu');
  if (typeof b.timeSpentMs !== 'number' || !Number.isFinite(b.timeSpentMs) || b.timeSpentMs < 0 || b.timeSpentMs > 24 * 3600_000) throw bad('timeSpentMs : une durée en millisecondes est attendue');
  if (b.comment !== undefined && (typeof b.comment !== 'string' || b.comment.length > 2000)) throw bad('comment : un texte de 2000 caractères au plus');
  const base = { requestId: b.requestId, timeSpentMs: Math.round(b.timeSpentMs), ...(b.comment ? { comment: b.comment as string } : {}) };
  if (b.quality === 'insufficient') {
    const views = b.viewsToRedo;
    if (!Array.isArray(views) || views.length === 0 || views.some((v) => !(VIEWS as readonly unknown[]).includes(v))) {
      throw bad(`viewsToRedo : les incidences à refaire (${VIEWS.join(', ')}) sont obligatoires quand la qualité est insuffisante`);
    }
    return { ...base, quality: 'insufficient', viewsToRedo: [...new Set(views as View[])], outcome: 'technical-recall' };
  }
  if (b.quality !== 'adequate') throw bad("quality : 'adequate' ou 'insufficient' attendu");
  if (b.result === 'normal') {
    if (b.right !== undefined || b.left !== undefined) throw bad('un avis normal ne décrit pas de lésion (right, left)');
    return { ...base, quality: 'adequate', result: 'normal', outcome: 'normal' };
  }
  if (b.result !== 'positive') throw bad("result : 'normal' ou 'positive' attendu quand la qualité est adéquate");
  const right = b.right === undefined ? undefined : finding('right', b.right);
  const left = b.left === undefined ? undefined : finding('left', b.left);
  if (!right && !left) throw bad('un avis positif décrit au moins un sein (right ou left)');
  return { ...base, quality: 'adequate', result: 'positive', ...(right ? { right } : {}), ...(left ? { left } : {}), outcome: 'positive' };
}

export function checkDeferral(body: unknown): { reason: DeferReason; comment?: string } {
  const b = (body ?? {}) as Record<string, unknown>;
  if (!(DEFER_REASONS as readonly unknown[]).includes(b.reason)) throw new HttpProblem(400, 'Motif obligatoire', `reason : un motif parmi ${DEFER_REASONS.join(', ')}`);
  if (b.comment !== undefined && (typeof b.comment !== 'string' || b.comment.length > 2000)) throw new HttpProblem(400, 'Commentaire invalide', 'comment : un texte de 2000 caractères au plus');
  return { reason: b.reason as DeferReason, ...(b.comment ? { comment: b.comment as string } : {}) };
}
