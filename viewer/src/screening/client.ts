// The screening API (SCREENING-API.md) as the viewer calls it: same-origin requests under the PSC
// session cookie; a refusal's French `detail` (problem+json) is what the reader is shown.
import { messageForStatus, UserError } from '../api.js';
import { t } from '../i18n.js';
import type { Batch, BatchWithCases, Case, DeferReason, Reader, Verdict, VerdictInput } from './types.js';

const ROOT = '/api/screening/batches';
const batchUrl = (id: string) => `${ROOT}/${encodeURIComponent(id)}`;
const caseUrl = (batch: string, c: string) => `${batchUrl(batch)}/cases/${encodeURIComponent(c)}`;

async function call<T>(url: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const { json, ...rest } = init;
  const headers: Record<string, string> = { Accept: 'application/json', ...(rest.headers as Record<string, string> | undefined) };
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, { credentials: 'same-origin', ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
  } catch {
    throw new UserError(t.errors.network);
  }
  if (res.status === 401 && (init.method ?? 'GET') === 'GET') {
    // no PSC session (a worklist link opened cold): log in, then back here
    location.assign(`/auth/login?returnTo=${encodeURIComponent(location.pathname + location.search)}`);
  }
  if (!res.ok) {
    const p = await res.json().catch(() => undefined) as { title?: unknown; detail?: unknown } | undefined;
    const said = typeof p?.detail === 'string' ? p.detail : typeof p?.title === 'string' ? p.title : undefined;
    // 401/403 keep the viewer's words (log in again); the others say what the box refused
    throw new UserError(res.status === 401 || !said ? messageForStatus(res.status) : said, res.status);
  }
  if (res.status === 204) return undefined as T;
  return await res.json() as T;
}

export const me = () => call<Reader>('/auth/me');
export const listBatches = () => call<Batch[]>(ROOT);
export const getBatch = (id: string) => call<BatchWithCases>(batchUrl(id));
export const batchAction = (id: string, action: 'pause' | 'resume' | 'cancel' | 'close') => call<Batch>(`${batchUrl(id)}/${action}`, { method: 'POST' });
export const resultsCsvUrl = (id: string) => `${batchUrl(id)}/results.csv`;

export function createFromCsv(file: Blob, o: { name: string; dueDate?: string; priorsWanted?: number }): Promise<Batch> {
  const q = new URLSearchParams({ name: o.name });
  if (o.dueDate) q.set('dueDate', o.dueDate);
  if (o.priorsWanted !== undefined) q.set('priorsWanted', String(o.priorsWanted));
  return call<Batch>(`${ROOT}?${q}`, { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: file });
}

export const recordVerdict = (b: string, c: string, v: VerdictInput) => call<Verdict>(`${caseUrl(b, c)}/verdict`, { method: 'POST', json: v });
export const amendVerdict = (b: string, c: string, v: VerdictInput) => call<Verdict>(`${caseUrl(b, c)}/verdict`, { method: 'PUT', json: v });
export const undoVerdict = (b: string, c: string) => call<void>(`${caseUrl(b, c)}/verdict`, { method: 'DELETE' });
export const deferCase = (b: string, c: string, reason: DeferReason, comment?: string) => call<unknown>(`${caseUrl(b, c)}/defer`, { method: 'POST', json: { reason, ...(comment ? { comment } : {}) } });
export const undefer = (b: string, c: string) => call<void>(`${caseUrl(b, c)}/defer`, { method: 'DELETE' });

/** The batch's live progress (Server-Sent Events): `batch` and `case` documents as they change. */
export function watchBatch(id: string, on: { batch?: (b: Batch) => void; case?: (c: Case) => void }): EventSource {
  const es = new EventSource(`${batchUrl(id)}/events`, { withCredentials: true });
  if (on.batch) es.addEventListener('batch', (e) => on.batch!(JSON.parse((e as MessageEvent<string>).data) as Batch));
  if (on.case) es.addEventListener('case', (e) => on.case!(JSON.parse((e as MessageEvent<string>).data) as Case));
  return es;
}
