// The gateway contract: the session document and the error words a user sees for each HTTP failure.
import { t } from './i18n.js';

// The session document's types come from the gateway (types only: erased from the bundle).
export type { SessionPatient as Patient, SessionStudyRef as StudyRef, SessionDocument as Session, ImportProgress as ImportJob } from '../../gateway/src/consumer/session-document.js';
import type { SessionDocument as Session, SessionStudyRef as StudyRef, ImportProgress as ImportJob } from '../../gateway/src/consumer/session-document.js';

/** An error whose message is already plain French for the user. */
export class UserError extends Error {
  constructor(message: string, readonly status?: number) { super(message); }
}

export function messageForStatus(status: number): string {
  if (status === 401) return t.errors.sessionExpired;
  if (status === 403) return t.errors.forbidden;
  if (status === 404 || status === 410) return t.errors.gone;
  if (status === 502 || status === 503 || status === 504) return t.errors.network;
  return t.errors.server;
}

export async function request(url: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { credentials: 'same-origin', ...init });
  } catch {
    throw new UserError(t.errors.network);
  }
  if (!res.ok) throw new UserError(messageForStatus(res.status), res.status);
  return res;
}

async function fetchJson<T>(url: string, accept: string): Promise<T> {
  const res = await request(url, { headers: { Accept: accept } });
  if (res.status === 204) return [] as unknown as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : []) as T;
}

/** Answers fetched ahead of need (by the entry, main.ts), each handed to the first getJson of its URL. */
const ahead = new Map<string, Promise<unknown>>();

export function prefetchJson<T>(url: string, accept = 'application/json'): Promise<T> {
  const p = fetchJson<T>(url, accept);
  p.catch(() => undefined); // its reader, if any, sees the failure
  ahead.set(`${accept} ${url}`, p);
  return p;
}

export function getJson<T>(url: string, accept = 'application/json'): Promise<T> {
  const key = `${accept} ${url}`;
  const early = ahead.get(key);
  if (early) { ahead.delete(key); return early as Promise<T>; }
  return fetchJson<T>(url, accept);
}

export const sessionUrl = (id: string) => `/api/sessions/${encodeURIComponent(id)}`;
/** the session's API root: the parent of its DICOMweb root */
export const sessionBase = (s: Session) => s.dicomWebRoot.replace(/\/dicom-web\/?$/, '');
export const loadSession = (id: string) => getJson<Session>(sessionUrl(id));

/** The study the viewer opens first: the current one when available, else the newest available. */
export function firstStudy(session: Session): StudyRef | undefined {
  return session.studies.find((s) => s.current && s.status === 'available') ?? session.studies.find((s) => s.status === 'available');
}

export async function startImport(url: string, studyUid: string, seriesUid?: string, measurements?: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ studyUid, ...(seriesUid ? { seriesUid } : {}), ...(measurements ? { measurements } : {}) }),
    });
  } catch {
    throw new UserError(t.errors.network);
  }
  if (!res.ok) {
    // a refusal (the exam is not this patient's: 409) says why, in French: shown as is
    const p = await res.json().catch(() => undefined) as { detail?: unknown } | undefined;
    throw new UserError(res.status === 409 && typeof p?.detail === 'string' ? p.detail : messageForStatus(res.status), res.status);
  }
  const body = (await res.json()) as { jobId: string };
  return body.jobId;
}

export const importStatus = (url: string, jobId: string) => getJson<ImportJob>(`${url}/${encodeURIComponent(jobId)}`);

/** Ends the session; resolves with where to go next (the PSC logout page when the box names one). */
export async function logout(url: string): Promise<string> {
  try {
    const res = await fetch(url, { method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json' } });
    const next = res.status === 200 ? ((await res.json()) as { redirect?: unknown }).redirect : undefined;
    return typeof next === 'string' && /^https?:/.test(next) ? next : '/';
  } catch {
    return '/'; // leave anyway
  }
}
