// Screening tests' fixtures: generated 4-view MG exams (small images) published on the two source
// boxes of the test network, the batch rows naming them, and a JSON client for box B's screening API.
import { request, type Dispatcher } from 'undici';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { nirWithKey } from '../../sandbox/demo-data/catalogue.js';
import type { ConsumerNetwork, Published } from './network.js';

export const TEST_INS_OID = '1.2.250.1.213.1.4.10';

export interface ScreeningPatient {
  ins: string;
  familyName: string;
  givenName: string;
  birthDate: string;
  source: 'box-a' | 'box-c';
  current: Published;
  prior?: Published;
  accession: string;
}

/** `n` patients, each with a current exam (2024) and, when `withPrior(i)`, one from two years before; alternating source boxes. */
export async function publishScreeningExams(net: ConsumerNetwork, n: number, o: { seed: string; withPrior?: (i: number) => boolean; size?: [number, number]; sources?: ('box-a' | 'box-c')[] }): Promise<ScreeningPatient[]> {
  const out: ScreeningPatient[] = [];
  const sources = o.sources ?? ['box-a', 'box-c'];
  for (let i = 0; i < n; i++) {
    const ins = nirWithKey(String(2640375000000 + (hash(o.seed) % 900) * 100 + i));
    const source = sources[i % sources.length];
    const familyName = `DEPISTAGE${i}`;
    const birthDate = '19640312';
    const exam = (date: string, accession: string) => makeMgStudy({
      patientId: `IPP-${o.seed}-${i}`, patientName: `${familyName}^ANNE`, birthDate, date, accession, size: o.size ?? [64, 48], seed: hash(`${o.seed}|${i}|${date}`) % 1000 + 1, lesion: 'none',
    });
    const accession = `S${hash(o.seed) % 1000}-${i}`;
    const prior = o.withPrior?.(i) ? await net.publish(exam('20220110', `${accession}P`).files.map((f) => f.part10), { ins, accession: `${accession}P`, source, studyDate: '20220110' }) : undefined;
    const current = await net.publish(exam('20240110', accession).files.map((f) => f.part10), { ins, accession, source, studyDate: '20240110' });
    out.push({ ins, familyName, givenName: 'ANNE', birthDate, source, current, prior, accession });
  }
  return out;
}

function hash(s: string): number {
  let h = 2166136261;
  for (const ch of s) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

export const rowOf = (p: ScreeningPatient) => ({ ins: p.ins, insOid: TEST_INS_OID, birthDate: p.birthDate, sex: 'F', familyName: p.familyName, givenName: p.givenName, accessionNumber: p.accession });

/** JSON calls to box B's screening API as the clinician of `cookie`. */
export function screeningClient(net: ConsumerNetwork, dispatcher: Dispatcher, cookie: string) {
  const call = async (method: Dispatcher.HttpMethod, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await request(`${net.boxB.userUrl}${path}`, {
      method, dispatcher,
      headers: { cookie, accept: 'application/json', ...(body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    const text = await r.body.text();
    let json: any;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    return { status: r.statusCode, headers: r.headers, text, json };
  };
  return {
    call,
    get: (path: string) => call('GET', path),
    post: (path: string, body?: unknown, headers?: Record<string, string>) => call('POST', path, body ?? {}, headers),
    put: (path: string, body: unknown) => call('PUT', path, body),
    del: (path: string) => call('DELETE', path),
    /** the batch with its cases */
    batch: async (id: string) => (await call('GET', `/api/screening/batches/${id}`)).json,
  };
}
