// Screening batches on the real network (two source boxes, the DMP and PSC simulators, Orthanc):
// CSV faults refused whole with nothing created, per-row faults as failed cases, a 50-case batch
// prefetched from two source boxes with one going down midway, pins holding under cache pressure,
// the budget refusal with its figure, verdicts recorded once, amend and undo, the results CSV, the
// FHIR result, the statistics, and a batch whose PSC tokens cannot be renewed.
import t from 'tap';
import { parse } from 'csv-parse/sync';
import { request } from 'undici';
import { randomUUID } from 'node:crypto';
import { startConsumerNetwork, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent, sqliteOf } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { publishScreeningExams, rowOf, screeningClient, TEST_INS_OID, type ScreeningPatient } from '../helpers/screening.js';
import { nirWithKey } from '../../sandbox/demo-data/catalogue.js';
import { seriesSpecs } from '../../gateway/src/consumer/series-specs.js';
import { SESSION_COOKIE } from '../../gateway/src/trust/sessions.js';

const EXAM_ESTIMATE = 256 * 1024;
const CACHE_MAX = 64 * 1024 ** 2;

let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;
let patients: ScreeningPatient[];

t.before(async () => {
  net = await startConsumerNetwork({
    secondSource: true, consumerOrthanc: false, cacheMaxBytes: CACHE_MAX,
    consumerConfig: { screening: { concurrency: 4, perSourceConcurrency: 2, retries: 2, retryBaseMs: 50, retryFailedSeconds: 4, examBytesEstimate: EXAM_ESTIMATE } },
  });
  agent = await mtlsAgent();
  // 50 patients, alternately on box A and box C; one in three with a prior two years before
  patients = await publishScreeningExams(net, 50, { seed: 'batch50', withPrior: (i) => i % 3 === 0 });
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

const csv = (lines: string[]) => Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');

t.test('whole-file faults: 4xx problem+json in French, and no batch created', async (t) => {
  const { cookie } = await net.login();
  const api = screeningClient(net, agent, cookie);
  const before = (await api.get('/api/screening/batches')).json.length;
  const up = (body: Buffer, q = 'name=Lot') => api.post(`/api/screening/batches?${q}`, body, { 'content-type': 'text/csv' });

  const wrong = await up(csv(['ins;birthDate;sexe', `${patients[0].ins};19640312;F`]));
  t.equal(wrong.status, 400);
  t.match(wrong.headers['content-type'], /application\/problem\+json/);
  t.match(wrong.json.detail, /colonne\(s\) inconnue\(s\) : sexe/);

  const dup = await up(csv(['ins,birthDate,sex,accessionNumber', `${patients[0].ins},19640312,F,A1`, `${patients[1].ins},19640312,F,A2`, `${patients[0].ins},19640312,F,A1`]));
  t.equal(dup.status, 400);
  t.match(dup.json.detail, /lignes en double.*ligne 3 = ligne 1/);

  const row = `${patients[0].ins};19640312;F`;
  const many = (n: number) => Buffer.from(['ins;birthDate;sex;accessionNumber', ...Array.from({ length: n }, (_, i) => `${row};X${i}`)].join('\n'));
  const tooMany = await up(many(10_001));
  t.equal(tooMany.status, 413, '10,001 rows: refused');
  t.match(tooMany.json.detail, /dépasse 10000 lignes/);

  // 10,000 rows parse; they cannot fit the cache: refused with the figures
  const big = await up(many(10_000));
  t.equal(big.status, 422, '10,000 rows over the cache budget');
  t.equal(big.json.title, 'Cache insuffisant');
  t.match(big.json.detail, /environ 4,9 Go .*10000 examens.*64 Mo disponibles/);
  t.equal(big.json.neededBytes, 10_000 * 2 * EXAM_ESTIMATE);

  const noName = await api.post('/api/screening/batches', { rows: [rowOf(patients[0])] });
  t.equal(noName.status, 400);
  t.equal((await api.get('/api/screening/batches')).json.length, before, 'nothing was created');
});

t.test('a Latin-1 CSV with ";": per-row faults are failed cases with their reason, the rest is prefetched', async (t) => {
  const { cookie } = await net.login();
  const api = screeningClient(net, agent, cookie);
  const p = patients[0];
  const badKey = `${p.ins.slice(0, 13)}${String((Number(p.ins.slice(13)) + 1) % 100).padStart(2, '0')}`;
  const unknown = nirWithKey('2991299999999');
  const text = [
    'ins;insOid;birthDate;sex;familyName;givenName;accessionNumber;readerRpps',
    `${p.ins};${TEST_INS_OID};19640312;F;HÉLÈNE-DÉPISTAGE;ANNE;${p.accession};${net.psc.clinicians[1].rpps}`,
    `${badKey};${TEST_INS_OID};19640312;F;CLÉ;FAUSSE;X1;`,
    `${unknown};${TEST_INS_OID};19640312;F;INCONNUE;DMP;X2;`,
    `${patients[2].ins};${TEST_INS_OID};19640312;F;SANS;KOS;NOPE-42;`,
  ].join('\r\n');
  const r = await api.post('/api/screening/batches?name=Latin-1&priorsWanted=1', Buffer.from(text, 'latin1'), { 'content-type': 'text/csv' });
  t.equal(r.status, 201, r.text);
  const id = r.json.id;
  t.equal(r.json.counts.total, 4);
  const b = await waitFor(async () => { const x = await api.batch(id); return x.state === 'ready' && x; }, 30_000, 'batch ready');
  const [ok, key, unk, nokos] = b.cases;
  t.equal(ok.patient.familyName, 'HÉLÈNE-DÉPISTAGE', 'Latin-1 decoded');
  t.equal(ok.state, 'ready');
  t.equal(ok.studyUid, p.current.studyUid);
  t.same(ok.priorStudyUids, [p.prior!.studyUid], 'the prior two years before');
  t.ok(ok.sessionId, 'a viewer session');
  t.ok(ok.reportDocumentId, 'the L1 report');
  t.match(key, { state: 'failed', error: /clé de contrôle/ });
  t.match(unk, { state: 'failed', error: /inconnue du DMP/ });
  t.match(nokos, { state: 'failed', error: /Aucun document de référence \(KOS\).*NOPE-42/ });

  // the case's viewer session is the viewer's: current + prior, the report readable
  const doc = await api.get(`/api/sessions/${ok.sessionId}`);
  t.equal(doc.status, 200);
  t.same(doc.json.studies.map((s: any) => [s.studyUid, s.current]), [[p.current.studyUid, true], [p.prior!.studyUid, false]]);
  const rep = await api.get(`/api/sessions/${ok.sessionId}/reports/${encodeURIComponent(ok.reportDocumentId)}`);
  t.equal(rep.status, 200);
  // the reader it is assigned to gets a session of their own
  const other = screeningClient(net, agent, (await net.login(net.psc.clinicians[1].rpps)).cookie);
  const mine = (await other.batch(id)).cases[0].sessionId;
  t.ok(mine && mine !== ok.sessionId, 'each reader has their own viewer session');
  t.equal((await api.get(`/api/sessions/${mine}`)).status, 404, "not readable with someone else's login");
  t.equal((await api.post(`/api/screening/batches/${id}/close`)).status, 200);
});

t.test('50 cases from two source boxes, one going down midway: its cases fail with the reason and succeed when it returns', async (t) => {
  const { cookie, rpps } = await net.login();
  const api = screeningClient(net, agent, cookie);
  const r = await api.post('/api/screening/batches', { name: 'Lot 50', dueDate: '2026-12-31', priorsWanted: 1, rows: patients.map(rowOf) });
  t.equal(r.status, 201, r.text);
  const id = r.json.id;
  t.equal(r.json.counts.total, 50);

  // the event stream: a batch event, one case event per case, then changes
  const sse = await request(`${net.boxB.userUrl}/api/screening/batches/${id}/events`, { dispatcher: agent, headers: { cookie, accept: 'text/event-stream' } });
  t.equal(sse.statusCode, 200);
  t.match(sse.headers['content-type'], /text\/event-stream/);
  const events: { event: string; data: any }[] = [];
  let buf = '';
  sse.body.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.*)$/m.exec(block)?.[1];
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
    }
  });
  sse.body.on('error', () => undefined);

  const onC = new Set(patients.filter((p) => p.source === 'box-c').map((p) => p.ins));
  await waitFor(async () => (await api.batch(id)).cases.filter((c: any) => onC.has(c.patient.ins) && c.state === 'ready').length >= 3, 60_000, 'some box C cases ready');
  await net.stopSecondSource();
  const settled = await waitFor(async () => {
    const b = await api.batch(id);
    return b.counts.queued === 0 && b.counts.fetching === 0 && b.counts.failed > 0 && b;
  }, 90_000, 'the batch settled with box C down', 100);
  const failed = settled.cases.filter((c: any) => c.state === 'failed');
  t.ok(failed.every((c: any) => onC.has(c.patient.ins)), 'only box C cases failed');
  t.ok(failed.every((c: any) => /injoignable|interrompue/.test(c.error)), `with the reason (${failed[0].error})`);
  t.ok(settled.cases.filter((c: any) => !onC.has(c.patient.ins)).every((c: any) => c.state === 'ready'), 'every box A case is ready');

  await net.startSecondSource();
  const done = await waitFor(async () => { const b = await api.batch(id); return b.counts.ready === 50 && b; }, 90_000, 'all 50 ready once box C is back', 200);
  t.equal(done.state, 'ready');
  t.equal(done.instances.done, done.instances.total);
  t.ok(done.bytes.done > 0 && done.bytes.done === done.bytes.total);
  const withPrior = done.cases.filter((c: any) => c.priorStudyUids.length === 1).length;
  t.equal(withPrior, patients.filter((p) => p.prior).length, 'priors fetched where they exist');

  // every series fetch is audited under the creator's identity and the batch
  const rows = sqliteOf(net.boxB).prepare("SELECT * FROM audit WHERE route = ? AND direction = 'peer-out'").all(`screening:${id}`) as any[];
  const okFetches = rows.filter((a) => a.status === 200);
  // patient 0's exams were prefetched by the Latin-1 batch: in the cache already, not fetched again
  const earlier = 1 + (patients[0].prior ? 1 : 0);
  t.equal(okFetches.length, 50 + withPrior - earlier, 'one audited fetch per series not already cached');
  t.equal(new Set(okFetches.map((a) => `${a.kos_uid}|${a.series_uid}`)).size, okFetches.length, 'none fetched twice');
  t.ok(rows.every((a) => a.actor_rpps === rpps && a.patient_id), 'under the RPPS of the creator, with the INS');
  t.ok(rows.some((a) => a.status !== 200), 'the failures too');

  t.ok(events[0]?.event === 'batch' && events.filter((e) => e.event === 'case').length >= 50, `events streamed (${events.length})`);
  t.ok(events.some((e) => e.event === 'case' && e.data.state === 'failed'), 'a failed case was streamed');
  await waitFor(() => events.some((e) => e.event === 'batch' && e.data.state === 'ready' && e.data.counts.ready === 50), 5_000, 'the ready batch streamed');
  sse.body.destroy();

  // ---------- pins hold under cache pressure; the close releases them ----------
  const cache = net.consumer.cache as any;
  const specsOf = (c: any) => (JSON.parse((sqliteOf(net.boxB).prepare('SELECT resolved_json FROM screening_cases WHERE id = ?').get(c.id) as any).resolved_json).studies as any[]).flatMap(seriesSpecs);
  const specs = done.cases.flatMap(specsOf);
  const budget = cache.opts.maxBytes;
  cache.opts.maxBytes = 1; // far below what the batch holds
  await cache.evict();
  const states = async () => Promise.all(specs.map((s: any) => cache.state(s) as Promise<string>));
  t.ok((await states()).every((s) => s === 'complete'), 'eviction takes nothing the open batch holds');

  // ---------- reading ----------
  const [c1, c2, c3] = done.cases;
  const base = `/api/screening/batches/${id}/cases`;
  const normal = { requestId: randomUUID(), quality: 'adequate', result: 'normal', timeSpentMs: 4200 };
  const first = await api.post(`${base}/${c1.id}/verdict`, normal);
  t.equal(first.status, 201);
  t.match(first.json, { outcome: 'normal', readerRpps: rpps });
  const again = await api.post(`${base}/${c1.id}/verdict`, normal);
  t.equal(again.status, 200, 'the same request again: the same verdict');
  t.same(again.json, first.json);
  const twoTabs = await api.post(`${base}/${c1.id}/verdict`, { ...normal, requestId: randomUUID(), result: undefined, quality: 'insufficient', viewsToRedo: ['L-MLO'] });
  t.equal(twoTabs.status, 409, 'a second verdict is refused');
  t.match(twoTabs.json.detail, /déjà été enregistré/);
  t.equal((await api.batch(id)).counts.read, 1, 'recorded once');

  const positive = { requestId: randomUUID(), quality: 'adequate', result: 'positive', right: { acr: 4, location: 'QSE', signs: ['mass', 'calcifications'] }, comment: 'masse spiculée', timeSpentMs: 61000 };
  t.equal((await api.post(`${base}/${c2.id}/verdict`, { ...positive, right: undefined })).status, 400, 'a positive verdict names a breast');
  t.equal((await api.post(`${base}/${c2.id}/verdict`, positive)).status, 201);
  t.equal((await api.post(`${base}/${c3.id}/defer`, {})).status, 400, 'deferral needs a reason');
  t.equal((await api.post(`${base}/${c3.id}/defer`, { reason: 'views-swapped' })).status, 200);
  const recall = await api.post(`${base}/${c3.id}/verdict`, { requestId: randomUUID(), quality: 'insufficient', viewsToRedo: ['R-MLO', 'L-MLO'], timeSpentMs: 9000 });
  t.equal(recall.json.outcome, 'technical-recall');

  // amend, undo (same reader only)
  const amended = await api.put(`${base}/${c1.id}/verdict`, { requestId: randomUUID(), quality: 'adequate', result: 'positive', left: { acr: 3, location: '2', signs: ['asymmetry'] }, timeSpentMs: 8000 });
  t.equal(amended.status, 200);
  t.match(amended.json, { outcome: 'positive', recordedAt: first.json.recordedAt });
  t.ok(amended.json.amendedAt);
  const other = screeningClient(net, agent, (await net.login(net.psc.clinicians[1].rpps)).cookie);
  t.equal((await other.del(`${base}/${c2.id}/verdict`)).status, 404, "another clinician cannot undo it (the batch is not theirs)");
  t.equal((await api.del(`${base}/${c2.id}/verdict`)).status, 204);
  t.equal((await api.post(`${base}/${c2.id}/verdict`, { ...positive, requestId: randomUUID() })).status, 201, 'recorded again after the undo');

  // results
  const res = await api.get(`/api/screening/batches/${id}/results.csv`);
  t.equal(res.status, 200);
  t.match(res.headers['content-type'], /text\/csv/);
  const table = parse(res.text.replace(/^\uFEFF/, ''), { columns: true, delimiter: ';' }) as Record<string, string>[];
  t.equal(table.length, 50);
  t.match(table[0], { position: '1', ins: c1.patient.ins, outcome: 'positive', leftAcr: '3', leftLocation: '2', leftSigns: 'asymmetry', readerRpps: rpps, timeSpentMs: '8000' });
  t.ok(table[0].amendedAt);
  t.match(table[1], { outcome: 'positive', rightAcr: '4', rightLocation: 'QSE', rightSigns: 'mass calcifications', comment: 'masse spiculée' });
  t.match(table[2], { outcome: 'technical-recall', quality: 'insufficient', viewsToRedo: 'R-MLO L-MLO', deferral: 'views-swapped' });
  t.equal(table[3].outcome, '');
  const json = await api.get(`/api/screening/batches/${id}/results.json`);
  t.equal(json.json.length, 50);
  const fhir = await api.get(`${base}/${c2.id}/result`);
  t.equal(fhir.status, 200);
  t.match(fhir.headers['content-type'], /application\/fhir\+json/);
  t.match(fhir.json, { resourceType: 'DiagnosticReport', status: 'final', subject: { identifier: { value: c2.patient.ins } }, conclusionCode: [{ coding: [{ code: 'positive' }] }] });
  t.match(fhir.json.contained[0], { resourceType: 'Observation', bodySite: { coding: [{ code: '73056007' }] }, valueCodeableConcept: { text: 'ACR 4' } });
  t.equal((await api.get(`${base}/${c1.id}/result`)).json.status, 'amended');
  t.equal((await api.get(`${base}/${done.cases[10].id}/result`)).status, 404, 'no result before a verdict');
  const st = await api.get(`/api/screening/batches/${id}/stats`);
  t.match(st.json, { casesRead: 3, medianTimeMs: 9000, byReader: [{ rpps, casesRead: 3 }] });
  t.equal(st.json.positiveRate, 2 / 3);
  t.equal(st.json.technicalRecallRate, 1 / 3);

  // closed: verdicts can no longer change, the pins go
  t.equal((await other.post(`/api/screening/batches/${id}/close`)).status, 404, 'only the creator closes (another clinician does not see the batch)');
  t.equal((await api.post(`/api/screening/batches/${id}/close`)).json.state, 'closed');
  t.equal((await api.put(`${base}/${c1.id}/verdict`, { ...normal, requestId: randomUUID() })).status, 409, 'no amendment once closed');
  await cache.evict();
  t.ok((await states()).every((s) => s === 'absent'), 'the close released the pins: evicted under pressure');
  cache.opts.maxBytes = budget;
});

t.test('a batch is visible only to its creator and its assigned readers: anyone else gets 404, a reader only their cases', async (t) => {
  const [creatorC, readerC, outsiderC] = net.psc.clinicians;
  const creator = screeningClient(net, agent, (await net.login(creatorC.rpps)).cookie);
  const reader = screeningClient(net, agent, (await net.login(readerC.rpps)).cookie);
  const outsider = screeningClient(net, agent, (await net.login(outsiderC.rpps)).cookie);
  const rows = [
    { ...rowOf(patients[4]), readerRpps: readerC.rpps },
    { ...rowOf(patients[5]), readerRpps: creatorC.rpps },
    rowOf(patients[6]),
  ];
  const r = await creator.post('/api/screening/batches', { name: 'Lot confidentiel', rows });
  t.equal(r.status, 201, r.text);
  const id = r.json.id;
  const all = (await creator.batch(id)).cases;
  t.equal(all.length, 3, 'the creator sees every case');
  const [mine, theirs, open] = all;

  // an outsider: not in the list, and every route of the batch answers as for an unknown batch
  t.notOk((await outsider.get('/api/screening/batches')).json.some((b: any) => b.id === id), 'not in the list of another clinician');
  for (const path of ['', '/results.csv', '/results.json', '/stats', `/cases/${mine.id}/result`]) {
    const x = await outsider.get(`/api/screening/batches/${id}${path}`);
    t.equal(x.status, 404, `GET ${path || 'batch'}: 404`);
    t.match(x.headers['content-type'], /application\/problem\+json/);
    t.equal(x.json.title, 'Lot inconnu');
  }
  const events = await request(`${net.boxB.userUrl}/api/screening/batches/${id}/events`, { dispatcher: agent, headers: { cookie: (await net.login(outsiderC.rpps)).cookie, accept: 'text/event-stream' } });
  t.equal(events.statusCode, 404, 'no event stream');
  await events.body.dump();
  const verdict = await outsider.post(`/api/screening/batches/${id}/cases/${open.id}/verdict`, { requestId: randomUUID(), quality: 'adequate', result: 'normal', timeSpentMs: 1 });
  t.equal(verdict.status, 404, 'no verdict on it');
  t.equal((await outsider.post(`/api/screening/batches/${id}/pause`)).status, 404, 'no control of it');

  // the assigned reader: the batch listed, their case and the unassigned one, not the creator's
  t.ok((await reader.get('/api/screening/batches')).json.some((b: any) => b.id === id), 'listed for the assigned reader');
  t.same((await reader.batch(id)).cases.map((c: any) => c.id), [mine.id, open.id], 'their case and the unassigned one');
  t.equal((await reader.get(`/api/screening/batches/${id}/results.json`)).json.length, 2, 'results of those cases only');
  const hidden = await reader.get(`/api/screening/batches/${id}/cases/${theirs.id}/result`);
  t.equal(hidden.status, 403, "another reader's case: refused");
  t.match(hidden.headers['content-type'], /application\/problem\+json/);
  t.equal((await reader.post(`/api/screening/batches/${id}/pause`)).status, 403, 'only the creator controls the batch');
  t.equal((await creator.post(`/api/screening/batches/${id}/close`)).status, 200);
});

t.test('a batch whose PSC tokens cannot be renewed waits for its creator: psc-reconnect, then resume', async (t) => {
  const clinician = net.psc.clinicians[2];
  const short = await net.psc.issueAccessToken({ rpps: clinician.rpps, clientId: 'box-b', ttlSeconds: 45 });
  // a session whose token expires within the renewal margin and has no refresh token
  const s = await net.boxB.services.sessions!.create({ rpps: clinician.rpps, nationalId: `8${clinician.rpps}`, sub: 'x', name: 'Short Lived' }, { accessToken: short, accessTokenExpiresAt: Date.now() + 45_000 });
  const api = screeningClient(net, agent, `${SESSION_COOKIE}=${s.id}`);
  const r = await api.post('/api/screening/batches', { name: 'PSC', rows: patients.slice(0, 2).map(rowOf) });
  t.equal(r.status, 201);
  const b = await waitFor(async () => { const x = await api.batch(r.json.id); return x.state === 'psc-reconnect' && x; }, 20_000, 'psc-reconnect');
  t.equal(b.pauseReason, 'reconnexion PSC requise');
  t.equal(b.counts.queued, 2, 'nothing fetched, nothing failed');
  const { cookie } = await net.login(clinician.rpps);
  const again = screeningClient(net, agent, cookie);
  t.equal((await again.post(`/api/screening/batches/${r.json.id}/resume`)).json.state, 'prefetching');
  await waitFor(async () => (await again.batch(r.json.id)).state === 'ready', 30_000, 'ready after the resume');
  t.equal((await again.batch(r.json.id)).counts.ready, 2);
  t.equal((await again.del(`/api/screening/batches/${r.json.id}`)).status, 204);
  t.equal((await again.get(`/api/screening/batches/${r.json.id}`)).status, 404);
});
