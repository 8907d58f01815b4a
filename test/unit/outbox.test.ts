// The publication outbox on its own: the repository's state machine in a real SQLite file, and the
// worker's scheduling with a stand-in PACS and DMP (both in memory) and a hand-driven clock:
// idempotency on setId + version, state transitions, backoff with jitter, give-up after the retry
// window, the stability check on a growing study, ordering within a report and concurrency across.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openDb } from '../../gateway/src/store/db.js';
import { PublicationRepository, type Job, type NewJob } from '../../gateway/src/source/publication/repository.js';
import { OutboxWorker, retryDelay } from '../../gateway/src/source/publication/worker.js';
import { DmpError } from '../../gateway/src/dmp/errors.js';
import type { DrimboxConfig } from '../../gateway/src/config/schema.js';
import type { DmpClient } from '../../gateway/src/dmp/client.js';
import type { DicomJson, Pacs } from '../../gateway/src/pacs/pacs.js';
import type { PublicationRecord } from '../../gateway/src/cda/types.js';
import { syntheticPublicationRecord } from '../helpers/publication-record.js';

const silent = pino({ level: 'silent' });

function clock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; }, set: (v: number) => { now = v; } };
}

function newRepo(now: () => number) {
  const db = openDb(join(mkdtempSync(join(tmpdir(), 'outbox-unit-')), 'db.sqlite'));
  return { db, repo: new PublicationRepository(db, now) };
}

function record(set: string, version = 1, study = '1.2.250.1.999.1.1.8121.3.116'): PublicationRecord {
  const r = syntheticPublicationRecord({ version, studyInstanceUid: study });
  return { ...r, setId: { root: '1.2.250.1.999.1.1.8121.7', extension: set } };
}

function publishJob(set: string, version = 1, study?: string): NewJob {
  const r = record(set, version, study);
  const setId = `${r.setId.root}^${r.setId.extension}`;
  return { kind: 'publish', idemKey: `publish|${setId}|${version}`, setId, version, studyUids: [r.studies[0].studyInstanceUid], payload: { record: r } };
}

// ---- a PACS in memory whose studies can grow between looks ----
function memoryPacs(patientId = 'IPP-0042', accession = 'ACC-2024-0001') {
  const studies = new Map<string, { series: string; sop: string }[]>();
  const pacs = {
    add(study: string, n: number) {
      const l = studies.get(study) ?? [];
      for (let i = 0; i < n; i++) l.push({ series: `${study}.1`, sop: `${study}.1.${l.length + 1}` });
      studies.set(study, l);
    },
    looks: 0,
    onLook: undefined as undefined | (() => void),
    async findStudies(keys: Record<string, string>): Promise<DicomJson[]> {
      const uid = keys.StudyInstanceUID;
      if (!studies.has(uid)) return [];
      return [{ '0020000D': { vr: 'UI', Value: [uid] }, '00100020': { vr: 'LO', Value: [patientId] }, '00080050': { vr: 'SH', Value: [accession] } } as DicomJson];
    },
    async findInstances(study: string): Promise<DicomJson[]> {
      pacs.looks++;
      const rows = (studies.get(study) ?? []).map((i) => ({
        '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] }, '00080018': { vr: 'UI', Value: [i.sop] }, '0020000E': { vr: 'UI', Value: [i.series] },
      }) as DicomJson);
      pacs.onLook?.();
      return rows;
    },
  };
  return pacs;
}

// ---- a DMP stand-in: records calls, fails on demand, can hold submissions open ----
function fakeDmp() {
  const calls: { kosUid: string; setId: string; at: number; replaces?: string }[] = [];
  const d = {
    calls,
    failWith: undefined as undefined | Error,
    gate: undefined as undefined | Promise<void>,
    inFlight: 0,
    maxInFlight: 0,
    async submitDocuments(sub: { record: PublicationRecord; kos: { sopInstanceUid: string }; replaces?: { kos?: string } }) {
      d.inFlight++;
      d.maxInFlight = Math.max(d.maxInFlight, d.inFlight);
      try {
        if (d.gate) await d.gate;
        if (d.failWith) throw d.failWith;
        calls.push({ kosUid: sub.kos.sopInstanceUid, setId: String(sub.record.setId.extension), at: Date.now(), replaces: sub.replaces?.kos });
        return { status: 'Success', submissionSetUid: '1.2.3', kosUniqueId: sub.kos.sopInstanceUid };
      } finally {
        d.inFlight--;
      }
    },
    lookups: 0,
    /** the DMP assigns entryUUIDs: here urn:uuid:<the KOS uid> */
    async getDocuments(by: { uniqueIds?: string[] }) {
      d.lookups++;
      return calls.filter((c) => by.uniqueIds?.includes(c.kosUid)).map((c) => ({ uniqueId: c.kosUid, entryUuid: `urn:uuid:${c.kosUid}` }));
    },
    async updateStatus() { return { status: 'Success' }; },
  };
  return d;
}

function config(over: Partial<DrimboxConfig['publication']> = {}): DrimboxConfig {
  return {
    publication: { studyWaitMinutes: 10, retryMaxMinutes: 60, stableSeconds: 0, concurrency: 2, ...over },
    peer: { publicUrl: 'https://box.example' },
    box: { retrieveLocationUid: '1.2.250.1.999.1.1.1', uidRoot: '2.25' },
    dmp: { includeReport: true },
  } as unknown as DrimboxConfig;
}

function worker(repo: PublicationRepository, pacs: ReturnType<typeof memoryPacs>, dmp: ReturnType<typeof fakeDmp>, o: { now?: () => number; cfg?: DrimboxConfig; random?: () => number; settled?: Job[]; retryMaxMs?: number } = {}) {
  return new OutboxWorker({
    repo, pacs: pacs as unknown as Pacs, dmp: () => dmp as unknown as DmpClient, config: o.cfg ?? config(), logger: silent,
    now: o.now, random: o.random, retryBaseMs: 1000, maxRetryDelayMs: 60_000, pollMs: 20, retryMaxMs: o.retryMaxMs,
    onSettled: (j) => o.settled?.push(j),
  });
}

t.test('idempotency key: setId + version', async (t) => {
  const c = clock();
  const { repo } = newRepo(c.now);
  const a = repo.enqueue(publishJob('S1', 1));
  t.ok(a.created);
  const again = repo.enqueue(publishJob('S1', 1));
  t.notOk(again.created, 'same set and version: not stored twice');
  t.equal(again.job.id, a.job.id);
  const v2 = repo.enqueue(publishJob('S1', 2));
  t.ok(v2.created, 'a new version is a new job');
  t.not(v2.job.id, a.job.id);
  // a resent message for a failed job re-queues it, fresh
  repo.fail(a.job.id, 'boom');
  c.advance(5000);
  const requeued = repo.enqueue(publishJob('S1', 1));
  t.ok(requeued.created, 'a failed job is re-queued by a resent message');
  t.equal(requeued.job.id, a.job.id, 'as the same job');
  t.equal(requeued.job.state, 'received');
  t.equal(requeued.job.attempts, 0);
  t.equal(requeued.job.windowStart, c.now(), 'with a new retry window');
});

t.test('state transitions: received → kos-built → submitted → done; RPLC; fail and resume', async (t) => {
  const c = clock();
  const { repo } = newRepo(c.now);
  const { job } = repo.enqueue(publishJob('S2', 1));
  t.equal(job.state, 'received');
  repo.setState(job.id, 'resolving');
  const k1 = repo.saveBuiltKos(job.id, { setId: job.setId, sopInstanceUid: '2.25.1', patientId: 'INS', part10: Buffer.from('x'), refs: { st: { se: ['a', 'b'] } }, studies: [{ studyUid: 'st', accession: 'A' }] });
  t.equal(repo.job(job.id)!.state, 'kos-built');
  t.equal(repo.job(job.id)!.kosId, k1);
  t.equal(repo.kos(k1)!.status, 'built', 'a built KOS grants nothing yet');
  t.equal(repo.kos(k1)!.instanceCount, 2);
  repo.markSubmitting(job.id, undefined);
  t.equal(repo.job(job.id)!.state, 'submitted');
  repo.markPublished(job.id, k1, { kos: 'urn:uuid:1', report: 'urn:uuid:2' });
  t.equal(repo.job(job.id)!.state, 'done');
  t.equal(repo.currentOfSet(job.setId)!.id, k1);
  t.equal(repo.currentVersionOfSet(job.setId), 1);

  const { job: j2 } = repo.enqueue(publishJob('S2', 2));
  const k2 = repo.saveBuiltKos(j2.id, { setId: j2.setId, sopInstanceUid: '2.25.2', patientId: 'INS', part10: Buffer.from('y'), refs: { st: { se: ['a'] } }, studies: [{ studyUid: 'st', accession: 'A' }] });
  repo.markSubmitting(j2.id, k1);
  t.equal(repo.job(j2.id)!.targetKosId, k1, 'what is replaced is fixed before sending');
  repo.fail(j2.id, 'DMP down');
  t.equal(repo.job(j2.id)!.state, 'failed');
  t.equal(repo.job(j2.id)!.failedAtState, 'submitted');
  t.equal(repo.retry(job.id), undefined, 'a done job cannot be retried');
  c.advance(1000);
  const resumed = repo.retry(j2.id)!;
  t.equal(resumed.state, 'submitted', 'admin retry resumes where it stopped (the DMP is asked first)');
  t.equal(resumed.attempts, 0);
  t.equal(resumed.windowStart, c.now());
  repo.markPublished(j2.id, k2, { kos: 'urn:uuid:3' }, k1);
  t.equal(repo.kos(k1)!.status, 'replaced');
  t.equal(repo.kos(k2)!.status, 'current');

  const { job: wd } = repo.enqueue({ kind: 'withdraw', idemKey: 'withdraw|S2', setId: j2.setId, payload: {} });
  repo.markSubmitting(wd.id, k2);
  repo.markWithdrawn(wd.id, k2, 'withdrawn by the RIS');
  t.equal(repo.kos(k2)!.status, 'withdrawn');
  t.equal(repo.currentOfSet(j2.setId), undefined, 'nothing current after withdrawal');
  t.equal(repo.job(wd.id)!.note, 'withdrawn by the RIS');

  // a job failed before its KOS was built starts again from the beginning
  const { job: j3 } = repo.enqueue(publishJob('S3', 1));
  repo.setState(j3.id, 'resolving');
  repo.fail(j3.id, 'mismatch');
  t.equal(repo.retry(j3.id)!.state, 'received');
});

t.test('ordering within a report; busy sets are skipped; wake-up time ignores blocked jobs', async (t) => {
  const c = clock();
  const { repo } = newRepo(c.now);
  const a1 = repo.enqueue(publishJob('A', 1)).job;
  const a2 = repo.enqueue(publishJob('A', 2)).job;
  const b1 = repo.enqueue(publishJob('B', 1)).job;
  t.equal(repo.nextDue()!.id, a1.id, 'oldest first');
  t.equal(repo.nextDue([a1.setId])!.id, b1.id, 'the set being processed is skipped, the other report is offered');
  t.equal(repo.nextDue([a1.setId, b1.setId]), undefined);
  // a1 fails for now and waits 60 s: a2 must not overtake it
  repo.scheduleRetry(a1.id, c.now() + 60_000, 'DMP down');
  repo.setState(b1.id, 'done');
  t.equal(repo.nextDue(), undefined, 'v2 of the report waits behind v1 even though v1 is not due');
  t.equal(repo.nextWakeAt(), c.now() + 60_000, 'next wake-up is v1 retry (v2 is blocked, not due)');
  c.advance(60_000);
  t.equal(repo.nextDue()!.id, a1.id);
  repo.setState(a1.id, 'done');
  t.equal(repo.nextDue()!.id, a2.id, 'v2 once v1 settled');
  repo.fail(a2.id, 'x');
  t.equal(repo.nextWakeAt(), undefined, 'nothing left to wake for');
});

t.test('backoff: exponential, capped, jitter between half and full', async (t) => {
  const base = 1000;
  const max = 60_000;
  for (let attempts = 0; attempts < 12; attempts++) {
    const full = Math.min(max, base * 2 ** attempts);
    t.equal(retryDelay(attempts, base, max, () => 0), Math.round(full / 2), `attempt ${attempts}: lowest draw is half`);
    t.equal(retryDelay(attempts, base, max, () => 0.999999), Math.round(full * 0.9999995), `attempt ${attempts}: highest draw is (almost) full`);
  }
  const draws = Array.from({ length: 2000 }, () => retryDelay(3, base, max));
  t.ok(draws.every((d) => d >= 4000 && d <= 8000), 'random draws stay within [base·2^n / 2, base·2^n]');
  t.ok(new Set(draws).size > 100, 'and are spread (jitter)');
  t.equal(retryDelay(1000, base, max, () => 0.999999), Math.round(max * 0.9999995), 'huge attempt counts stay capped');
});

t.test('worker: retryable DMP errors back off with jitter, then give up after the retry window', async (t) => {
  const c = clock();
  const { repo } = newRepo(c.now);
  const pacs = memoryPacs();
  pacs.add('1.2.250.1.999.1.1.8121.3.116', 3);
  const dmp = fakeDmp();
  dmp.failWith = new DmpError({ code: 'transport', message: 'DMP unreachable: connect ECONNREFUSED', retryable: true });
  const w = worker(repo, pacs, dmp, { now: c.now, cfg: config({ retryMaxMinutes: 2 }) });
  const { job } = repo.enqueue(publishJob('R', 1));
  const start = c.now();
  let attempts = 0;
  for (;;) {
    await w.process(repo.job(job.id)!);
    const j = repo.job(job.id)!;
    if (j.state === 'failed') break;
    attempts++;
    t.equal(j.state, 'submitted', 'the KOS is kept; only the sending is retried');
    const full = Math.min(60_000, 1000 * 2 ** (j.attempts - 1));
    const wait = j.nextAttemptAt - c.now();
    t.ok(wait >= full / 2 - 1 && wait <= full + 1, `retry ${j.attempts} in ${wait} ms (within [${full / 2}, ${full}])`);
    c.set(j.nextAttemptAt);
    if (attempts > 50) throw new Error('never gave up');
  }
  const failed = repo.job(job.id)!;
  t.ok(c.now() - start >= 120_000, 'not before the 2-minute window');
  t.match(failed.lastError, /gave up after 2 min of retries; last error: DMP unreachable/);
  t.equal(failed.failedAtState, 'submitted');
  t.equal(dmp.calls.length, 0);

  // non-retryable refusal: failed at once
  dmp.failWith = new DmpError({ code: 'XDSRegistryMetadataError', message: 'bad metadata', retryable: false });
  const { job: j2 } = repo.enqueue(publishJob('R2', 1));
  await w.process(repo.job(j2.id)!);
  t.equal(repo.job(j2.id)!.state, 'failed');
  t.match(repo.job(j2.id)!.lastError, /refused the submission \(XDSRegistryMetadataError\)/);
});

t.test('worker: a study still growing is looked at again; the KOS waits for it to be stable', async (t) => {
  const c = clock();
  const { repo } = newRepo(c.now);
  const study = '1.2.250.1.999.1.1.8121.3.200';
  const pacs = memoryPacs();
  pacs.add(study, 2);
  const dmp = fakeDmp();
  const w = worker(repo, pacs, dmp, { now: c.now, cfg: config({ stableSeconds: 0.05 }) });
  const { job } = repo.enqueue(publishJob('G', 1, study));
  // every look at the instances adds one more, three times
  let grow = 3;
  pacs.onLook = () => { if (grow-- > 0) pacs.add(study, 1); };
  await w.process(repo.job(job.id)!);
  let j = repo.job(job.id)!;
  t.equal(j.state, 'resolving', 'not built while the study grows');
  t.match(j.lastError, /still changing in the PACS \(\d+ then \d+ instances/);
  t.equal(j.nextAttemptAt, c.now(), 'looked at again at once (the look itself waits)');
  t.ok(j.studyWaitingSince, 'counts towards studyWaitMinutes');
  while (j.state === 'resolving') {
    await w.process(j);
    j = repo.job(job.id)!;
  }
  t.equal(j.state, 'done', `published (${j.lastError ?? ''})`);
  t.equal(repo.kos(j.kosId!)!.instanceCount, 5, 'the KOS references every instance, late ones included');

  // a study that never stops changing gives up after studyWaitMinutes
  const { job: k } = repo.enqueue(publishJob('G2', 1, study));
  pacs.onLook = () => pacs.add(study, 1);
  const w2 = worker(repo, pacs, dmp, { now: c.now, cfg: config({ stableSeconds: 0.01, studyWaitMinutes: 1 }) });
  let kj = repo.job(k.id)!;
  for (let i = 0; kj.state !== 'failed' && i < 10; i++) {
    await w2.process(kj);
    c.advance(30_000);
    kj = repo.job(k.id)!;
  }
  t.equal(kj.state, 'failed');
  t.match(kj.lastError, /gave up after waiting 1 min for the study/);
});

t.test('worker: different reports run side by side, one report stays in order', async (t) => {
  const { repo } = newRepo(Date.now);
  const pacs = memoryPacs();
  pacs.add('1.2.250.1.999.1.1.8121.3.116', 2);
  const dmp = fakeDmp();
  let open!: () => void;
  dmp.gate = new Promise<void>((r) => { open = r; });
  const settled: Job[] = [];
  const w = worker(repo, pacs, dmp, { settled, cfg: config({ concurrency: 2 }) });
  const a1 = repo.enqueue(publishJob('CA', 1)).job;
  const a2 = repo.enqueue(publishJob('CA', 2)).job;
  const b1 = repo.enqueue(publishJob('CB', 1)).job;
  const c1 = repo.enqueue(publishJob('CC', 1)).job;
  w.start();
  t.teardown(() => w.stop());
  const until = async (f: () => boolean, what: string) => {
    const end = Date.now() + 5000;
    while (!f()) { if (Date.now() > end) throw new Error(`timed out: ${what}`); await new Promise((r) => setTimeout(r, 5)); }
  };
  await until(() => dmp.inFlight === 2, 'two submissions in flight');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(dmp.inFlight, 2, 'no more than publication.concurrency at once');
  t.equal(repo.job(a2.id)!.state, 'received', 'v2 of report CA has not started while v1 runs');
  t.equal(repo.job(c1.id)!.state, 'received', 'the third report waits for a free slot');
  open();
  await until(() => settled.length === 4, 'all four settled');
  t.same(settled.map((j) => j.state), ['done', 'done', 'done', 'done']);
  t.equal(dmp.maxInFlight, 2);
  const order = dmp.calls.filter((c) => c.setId === 'CA');
  t.equal(order.length, 2);
  const ids = settled.map((j) => j.id);
  t.ok(ids.indexOf(a1.id) < ids.indexOf(a2.id), 'v1 of CA settled before v2');
  t.equal(repo.currentVersionOfSet(a2.setId), 2, 'and v2 is the current one');
  const v1 = repo.kos(repo.job(a1.id)!.kosId!)!;
  t.equal(v1.kosEntryUuid, `urn:uuid:${v1.sopInstanceUid}`, 'entryUUIDs learnt after the acknowledgement');
  t.equal(order[1].replaces, v1.kosEntryUuid, 'v2 replaces v1 by its entryUUID (RPLC)');
  t.ok(ids.includes(b1.id) && ids.includes(c1.id));
});
