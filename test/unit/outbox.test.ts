// The publication outbox on its own: the repository's state machine on both stores (SQLite, PostgreSQL), and the
// worker's scheduling with a stand-in PACS and DMP (both in memory) and a hand-driven clock:
// idempotency on setId + version, state transitions, backoff with jitter, give-up after the retry
// window, the stability check on a growing study, ordering within a report and concurrency across,
// claims and leases (a claimed job is not offered again until its lease runs out).
import t from 'tap';
import pino from 'pino';
import { openStore, type Store } from '../../gateway/src/store/database.js';
import { PublicationRepository, type Job, type NewJob } from '../../gateway/src/source/publication/repository.js';
import { OutboxWorker, retryDelay } from '../../gateway/src/source/publication/worker.js';
import { DmpError } from '../../gateway/src/dmp/errors.js';
import type { DrimboxConfig } from '../../gateway/src/config/schema.js';
import type { DmpClient } from '../../gateway/src/dmp/client.js';
import type { DicomJson, Pacs } from '../../gateway/src/pacs/pacs.js';
import type { PublicationRecord } from '../../gateway/src/cda/types.js';
import { syntheticPublicationRecord } from '../helpers/publication-record.js';
import { forEachStore, freshStore } from '../helpers/stores.js';

const silent = pino({ level: 'silent' });

function clock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; }, set: (v: number) => { now = v; } };
}

function newRepo(store: Store, now: () => number) {
  return { repo: new PublicationRepository(store, now) };
}

const INSTANCE = 'unit';

/** What the worker loop does for one job: claim it (it must be the one due), run it, release it. */
async function claimAndProcess(w: OutboxWorker, repo: PublicationRepository, jobId: number): Promise<void> {
  const job = await repo.claimNext(INSTANCE, 60_000);
  if (job?.id !== jobId) throw new Error(`job ${jobId} is not the one due (got ${job?.id})`);
  try { await w.process(job); } finally { await repo.releaseClaim(job.id, INSTANCE); }
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
    onSettled: (j) => o.settled?.push(j), instanceId: INSTANCE,
  });
}

forEachStore(t, 'idempotency key: setId + version', async (t, store) => {
  const c = clock();
  const { repo } = newRepo(store, c.now);
  const a = await repo.enqueue(publishJob('S1', 1));
  t.ok(a.created);
  const again = await repo.enqueue(publishJob('S1', 1));
  t.notOk(again.created, 'same set and version: not stored twice');
  t.equal(again.job.id, a.job.id);
  const v2 = await repo.enqueue(publishJob('S1', 2));
  t.ok(v2.created, 'a new version is a new job');
  t.not(v2.job.id, a.job.id);
  // a resent message for a failed job re-queues it, fresh
  await repo.fail(a.job.id, 'boom');
  c.advance(5000);
  const requeued = await repo.enqueue(publishJob('S1', 1));
  t.ok(requeued.created, 'a failed job is re-queued by a resent message');
  t.equal(requeued.job.id, a.job.id, 'as the same job');
  t.equal(requeued.job.state, 'received');
  t.equal(requeued.job.attempts, 0);
  t.equal(requeued.job.windowStart, c.now(), 'with a new retry window');
});

forEachStore(t, 'state transitions: received → kos-built → submitted → done; RPLC; fail and resume', async (t, store) => {
  const c = clock();
  const { repo } = newRepo(store, c.now);
  const { job } = await repo.enqueue(publishJob('S2', 1));
  t.equal(job.state, 'received');
  await repo.setState(job.id, 'resolving');
  const k1 = await repo.saveBuiltKos(job.id, { setId: job.setId, sopInstanceUid: '2.25.1', patientId: 'INS', part10: Buffer.from('x'), refs: { st: { se: ['a', 'b'] } }, studies: [{ studyUid: 'st', accession: 'A' }] });
  t.equal((await repo.job(job.id))!.state, 'kos-built');
  t.equal((await repo.job(job.id))!.kosId, k1);
  t.equal((await repo.kos(k1))!.status, 'built', 'a built KOS grants nothing yet');
  t.equal((await repo.kos(k1))!.instanceCount, 2);
  await repo.markSubmitting(job.id, undefined);
  t.equal((await repo.job(job.id))!.state, 'submitted');
  await repo.markPublished(job.id, k1, { kos: 'urn:uuid:1', report: 'urn:uuid:2' });
  t.equal((await repo.job(job.id))!.state, 'done');
  t.equal((await repo.currentOfSet(job.setId))!.id, k1);
  t.equal(await repo.currentVersionOfSet(job.setId), 1);

  const { job: j2 } = await repo.enqueue(publishJob('S2', 2));
  const k2 = await repo.saveBuiltKos(j2.id, { setId: j2.setId, sopInstanceUid: '2.25.2', patientId: 'INS', part10: Buffer.from('y'), refs: { st: { se: ['a'] } }, studies: [{ studyUid: 'st', accession: 'A' }] });
  await repo.markSubmitting(j2.id, k1);
  t.equal((await repo.job(j2.id))!.targetKosId, k1, 'what is replaced is fixed before sending');
  await repo.fail(j2.id, 'DMP down');
  t.equal((await repo.job(j2.id))!.state, 'failed');
  t.equal((await repo.job(j2.id))!.failedAtState, 'submitted');
  t.equal(await repo.retry(job.id), undefined, 'a done job cannot be retried');
  c.advance(1000);
  const resumed = (await repo.retry(j2.id))!;
  t.equal(resumed.state, 'submitted', 'admin retry resumes where it stopped (the DMP is asked first)');
  t.equal(resumed.attempts, 0);
  t.equal(resumed.windowStart, c.now());
  await repo.markPublished(j2.id, k2, { kos: 'urn:uuid:3' }, k1);
  t.equal((await repo.kos(k1))!.status, 'replaced');
  t.equal((await repo.kos(k2))!.status, 'current');

  const { job: wd } = await repo.enqueue({ kind: 'withdraw', idemKey: 'withdraw|S2', setId: j2.setId, payload: {} });
  await repo.markSubmitting(wd.id, k2);
  await repo.markWithdrawn(wd.id, k2, 'withdrawn by the RIS');
  t.equal((await repo.kos(k2))!.status, 'withdrawn');
  t.equal(await repo.currentOfSet(j2.setId), undefined, 'nothing current after withdrawal');
  t.equal((await repo.job(wd.id))!.note, 'withdrawn by the RIS');

  // a job failed before its KOS was built starts again from the beginning
  const { job: j3 } = await repo.enqueue(publishJob('S3', 1));
  await repo.setState(j3.id, 'resolving');
  await repo.fail(j3.id, 'mismatch');
  t.equal((await repo.retry(j3.id))!.state, 'received');
});

forEachStore(t, 'ordering within a report; a claimed job is not offered again; wake-up time ignores blocked jobs', async (t, store) => {
  const c = clock();
  const { repo } = newRepo(store, c.now);
  const a1 = (await repo.enqueue(publishJob('A', 1))).job;
  const a2 = (await repo.enqueue(publishJob('A', 2))).job;
  const b1 = (await repo.enqueue(publishJob('B', 1))).job;
  t.equal((await repo.claimNext('i1', 10_000))!.id, a1.id, 'oldest first');
  t.equal((await repo.claimNext('i2', 10_000))!.id, b1.id, 'the claimed report is skipped (v2 waits behind v1), the other report is offered');
  t.equal(await repo.claimNext('i3', 10_000), undefined, 'nothing else is due');
  t.equal(await repo.nextWakeAt(), c.now() + 10_000, 'wake up when a lease may run out');
  // a1 fails for now and waits 60 s: a2 must not overtake it
  await repo.scheduleRetry(a1.id, c.now() + 60_000, 'DMP down');
  await repo.releaseClaim(a1.id, 'i1');
  await repo.setState(b1.id, 'done');
  await repo.releaseClaim(b1.id, 'i2');
  t.equal(await repo.claimNext('i1', 10_000), undefined, 'v2 of the report waits behind v1 even though v1 is not due');
  t.equal(await repo.nextWakeAt(), c.now() + 60_000, 'next wake-up is v1 retry (v2 is blocked, not due)');
  c.advance(60_000);
  t.equal((await repo.claimNext('i1', 10_000))!.id, a1.id);
  await repo.setState(a1.id, 'done');
  await repo.releaseClaim(a1.id, 'i1');
  t.equal((await repo.claimNext('i1', 10_000))!.id, a2.id, 'v2 once v1 settled');
  await repo.fail(a2.id, 'x');
  await repo.releaseClaim(a2.id, 'i1');
  t.equal(await repo.nextWakeAt(), undefined, 'nothing left to wake for');
});

forEachStore(t, 'a lease that runs out is taken over; a renewed one is not; the old holder learns it lost the job', async (t, store) => {
  const c = clock();
  const { repo } = newRepo(store, c.now);
  const { job } = await repo.enqueue(publishJob('L', 1));
  t.equal((await repo.claimNext('dead', 5000))!.id, job.id);
  c.advance(4000);
  t.equal(await repo.claimNext('alive', 5000), undefined, 'a live lease holds');
  t.ok(await repo.renewClaim(job.id, 'dead', 5000), 'the holder renews it');
  c.advance(4000);
  t.equal(await repo.claimNext('alive', 5000), undefined, 'renewed: still held');
  c.advance(1001);
  t.equal((await repo.claimNext('alive', 5000))!.id, job.id, 'lease run out (no renewal): another instance takes the job over');
  t.notOk(await repo.renewClaim(job.id, 'dead', 5000), 'the old holder cannot renew it any more');
  await repo.releaseClaim(job.id, 'dead');
  t.equal(await repo.claimNext('third', 5000), undefined, "the old holder's release does not free the new holder's claim");
  await repo.releaseClaimsOf('alive');
  t.equal((await repo.claimNext('third', 5000))!.id, job.id, 'released: offered at once');
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

forEachStore(t, 'worker: retryable DMP errors back off with jitter, then give up after the retry window', async (t, store) => {
  const c = clock();
  const { repo } = newRepo(store, c.now);
  const pacs = memoryPacs();
  pacs.add('1.2.250.1.999.1.1.8121.3.116', 3);
  const dmp = fakeDmp();
  dmp.failWith = new DmpError({ code: 'transport', message: 'DMP unreachable: connect ECONNREFUSED', retryable: true });
  const w = worker(repo, pacs, dmp, { now: c.now, cfg: config({ retryMaxMinutes: 2 }) });
  const { job } = await repo.enqueue(publishJob('R', 1));
  const start = c.now();
  let attempts = 0;
  for (;;) {
    await claimAndProcess(w, repo, job.id);
    const j = (await repo.job(job.id))!;
    if (j.state === 'failed') break;
    attempts++;
    t.equal(j.state, 'submitted', 'the KOS is kept; only the sending is retried');
    const full = Math.min(60_000, 1000 * 2 ** (j.attempts - 1));
    const wait = j.nextAttemptAt - c.now();
    t.ok(wait >= full / 2 - 1 && wait <= full + 1, `retry ${j.attempts} in ${wait} ms (within [${full / 2}, ${full}])`);
    c.set(j.nextAttemptAt);
    if (attempts > 50) throw new Error('never gave up');
  }
  const failed = (await repo.job(job.id))!;
  t.ok(c.now() - start >= 120_000, 'not before the 2-minute window');
  t.match(failed.lastError, /gave up after 2 min of retries; last error: DMP unreachable/);
  t.equal(failed.failedAtState, 'submitted');
  t.equal(dmp.calls.length, 0);

  // non-retryable refusal: failed at once
  dmp.failWith = new DmpError({ code: 'XDSRegistryMetadataError', message: 'bad metadata', retryable: false });
  const { job: j2 } = await repo.enqueue(publishJob('R2', 1));
  await claimAndProcess(w, repo, j2.id);
  t.equal((await repo.job(j2.id))!.state, 'failed');
  t.match((await repo.job(j2.id))!.lastError, /refused the submission \(XDSRegistryMetadataError\)/);
});

forEachStore(t, 'worker: a study still growing is looked at again; the KOS waits for it to be stable', async (t, store) => {
  const c = clock();
  const { repo } = newRepo(store, c.now);
  const study = '1.2.250.1.999.1.1.8121.3.200';
  const pacs = memoryPacs();
  pacs.add(study, 2);
  const dmp = fakeDmp();
  const w = worker(repo, pacs, dmp, { now: c.now, cfg: config({ stableSeconds: 0.05 }) });
  const { job } = await repo.enqueue(publishJob('G', 1, study));
  // every look at the instances adds one more, three times
  let grow = 3;
  pacs.onLook = () => { if (grow-- > 0) pacs.add(study, 1); };
  await claimAndProcess(w, repo, job.id);
  let j = (await repo.job(job.id))!;
  t.equal(j.state, 'resolving', 'not built while the study grows');
  t.match(j.lastError, /still changing in the PACS \(\d+ then \d+ instances/);
  t.equal(j.nextAttemptAt, c.now(), 'looked at again at once (the look itself waits)');
  t.ok(j.studyWaitingSince, 'counts towards studyWaitMinutes');
  while (j.state === 'resolving') {
    await claimAndProcess(w, repo, j.id);
    j = (await repo.job(job.id))!;
  }
  t.equal(j.state, 'done', `published (${j.lastError ?? ''})`);
  t.equal((await repo.kos(j.kosId!))!.instanceCount, 5, 'the KOS references every instance, late ones included');

  // a study that never stops changing gives up after studyWaitMinutes
  const { job: k } = await repo.enqueue(publishJob('G2', 1, study));
  pacs.onLook = () => pacs.add(study, 1);
  const w2 = worker(repo, pacs, dmp, { now: c.now, cfg: config({ stableSeconds: 0.01, studyWaitMinutes: 1 }) });
  let kj = (await repo.job(k.id))!;
  for (let i = 0; kj.state !== 'failed' && i < 10; i++) {
    await claimAndProcess(w2, repo, kj.id);
    c.advance(30_000);
    kj = (await repo.job(k.id))!;
  }
  t.equal(kj.state, 'failed');
  t.match(kj.lastError, /gave up after waiting 1 min for the study/);
});

forEachStore(t, 'worker: different reports run side by side, one report stays in order', async (t, store) => {
  const { repo } = newRepo(store, Date.now);
  const pacs = memoryPacs();
  pacs.add('1.2.250.1.999.1.1.8121.3.116', 2);
  const dmp = fakeDmp();
  let open!: () => void;
  dmp.gate = new Promise<void>((r) => { open = r; });
  const settled: Job[] = [];
  const w = worker(repo, pacs, dmp, { settled, cfg: config({ concurrency: 2 }) });
  const a1 = (await repo.enqueue(publishJob('CA', 1))).job;
  const a2 = (await repo.enqueue(publishJob('CA', 2))).job;
  const b1 = (await repo.enqueue(publishJob('CB', 1))).job;
  const c1 = (await repo.enqueue(publishJob('CC', 1))).job;
  w.start();
  t.teardown(() => w.stop());
  const until = async (f: () => boolean, what: string) => {
    const end = Date.now() + 5000;
    while (!f()) { if (Date.now() > end) throw new Error(`timed out: ${what}`); await new Promise((r) => setTimeout(r, 5)); }
  };
  await until(() => dmp.inFlight === 2, 'two submissions in flight');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(dmp.inFlight, 2, 'no more than publication.concurrency at once');
  t.equal((await repo.job(a2.id))!.state, 'received', 'v2 of report CA has not started while v1 runs');
  t.equal((await repo.job(c1.id))!.state, 'received', 'the third report waits for a free slot');
  open();
  await until(() => settled.length === 4, 'all four settled');
  t.same(settled.map((j) => j.state), ['done', 'done', 'done', 'done']);
  t.equal(dmp.maxInFlight, 2);
  const order = dmp.calls.filter((c) => c.setId === 'CA');
  t.equal(order.length, 2);
  const ids = settled.map((j) => j.id);
  t.ok(ids.indexOf(a1.id) < ids.indexOf(a2.id), 'v1 of CA settled before v2');
  t.equal(await repo.currentVersionOfSet(a2.setId), 2, 'and v2 is the current one');
  const v1 = (await repo.kos((await repo.job(a1.id))!.kosId!))!;
  t.equal(v1.kosEntryUuid, `urn:uuid:${v1.sopInstanceUid}`, 'entryUUIDs learnt after the acknowledgement');
  t.equal(order[1].replaces, v1.kosEntryUuid, 'v2 replaces v1 by its entryUUID (RPLC)');
  t.ok(ids.includes(b1.id) && ids.includes(c1.id));
});

t.test('PostgreSQL: two instances draining one outbox publish every job exactly once; a dead instance\'s job is taken over', async (t) => {
  const { store, url } = await freshStore(t, 'postgres');
  const other = await openStore(url); // a second instance: its own pool on the same database
  t.teardown(() => other.close());
  const repoA = new PublicationRepository(store);
  const repoB = new PublicationRepository(other);
  const pacs = memoryPacs();
  const study = '1.2.250.1.999.1.1.8121.3.116';
  pacs.add(study, 2);
  const dmp = fakeDmp(); // one DMP both instances send to
  const mk = (repo: PublicationRepository, instanceId: string, settled: Job[]) => new OutboxWorker({
    repo, pacs: pacs as unknown as Pacs, dmp: () => dmp as unknown as DmpClient, config: config({ concurrency: 4 }), logger: silent,
    retryBaseMs: 1000, maxRetryDelayMs: 60_000, pollMs: 20, onSettled: (j) => settled.push(j), instanceId, leaseMs: 1500,
  });

  // an instance that claimed a job and died (kill -9: no renewal, no release) before sending it
  const { job: orphan } = await repoA.enqueue(publishJob('DEAD', 1, study));
  t.equal((await repoA.claimNext('dead-instance', 1500))!.id, orphan.id);
  const claimedAt = Date.now();

  const N = 30;
  for (let i = 0; i < N; i++) await (i % 2 ? repoA : repoB).enqueue(publishJob(`P${i}`, 1, study));
  const settledA: Job[] = [];
  const settledB: Job[] = [];
  const a = mk(repoA, 'instance-a', settledA);
  const b = mk(repoB, 'instance-b', settledB);
  a.start();
  b.start();
  t.teardown(async () => { await a.stop(); await b.stop(); });
  const end = Date.now() + 30_000;
  while (settledA.length + settledB.length < N + 1) {
    if (Date.now() > end) throw new Error(`only ${settledA.length + settledB.length} of ${N + 1} settled`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const all = [...settledA, ...settledB];
  t.ok(all.every((j) => j.state === 'done'), 'every job published');
  t.equal(new Set(all.map((j) => j.id)).size, N + 1, 'each settled once');
  t.ok(settledA.length > 0 && settledB.length > 0, `both instances worked (${settledA.length} + ${settledB.length})`);
  const sent = dmp.calls.map((c) => c.setId).sort();
  t.same(sent, [...Array.from({ length: N }, (_, i) => `P${i}`), 'DEAD'].sort(), 'the DMP received each report exactly once, none lost');
  const orphanDone = all.find((j) => j.id === orphan.id)!;
  t.ok(orphanDone.updatedAt - claimedAt >= 1400, "the dead instance's job waited for its lease to run out, then was taken over");
  const { n } = await store.db.selectFrom('published_kos').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'current').executeTakeFirstOrThrow();
  t.equal(Number(n), N + 1, 'one current KOS per report');
});
