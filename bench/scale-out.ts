// Scale-out benchmark: the same centre as 1 and as 3 gateway instances behind HAProxy (one PostgreSQL,
// one cache folder: test/helpers/ha-cluster.ts), each instance held to the same CPU quota by a cgroup
// of its own (cpu-quota.ts) so that two cores can show scaling; Orthanc, HAProxy, PostgreSQL and the
// simulators run unconstrained. Measured through HAProxy as users see it:
// - peer WADO-RS throughput: 10 concurrent streams (another box, mutual TLS) retrieving a series;
// - viewer API requests/s: 50 clients reading a cached series' metadata in one clinician session;
// - publications per minute: reports sent by 8 RIS connections, until every KOS is in the DMP.
// Scaling = 3-instance figure / 1-instance figure (target ≥ 2.5).
import { request, type Agent } from 'undici';
import { cpuQuota, type CpuQuota } from './cpu-quota.js';
import { startCluster, type Cluster } from '../test/helpers/ha-cluster.js';
import { makeExam, seriesOf, dmpDocuments, kosUidOf, sendUntilAcked, clinicianWithSession, type Exam } from '../test/helpers/ha-exams.js';
import { mtlsAgent } from '../test/helpers/box.js';
import { waitFor } from '../test/helpers/wait.js';

const CPUS = Number(process.env.BENCH_INSTANCE_CPUS ?? 0.3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const PUBLICATIONS = Number(process.env.BENCH_PUBLICATIONS ?? 24);
/** which measures to take (comma-separated: publications,peer,viewer), e.g. only publications when profiling */
const PHASES = new Set((process.env.BENCH_PHASES ?? 'publications,peer,viewer').split(','));
const DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

/** Runs `clients` loops of `once` for SECONDS; how many completed and the bytes they read. */
async function load(clients: number, once: () => Promise<number>): Promise<{ done: number; bytes: number; seconds: number }> {
  const end = performance.now() + SECONDS * 1000;
  let done = 0;
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) { bytes += await once(); done++; }
  }));
  return { done, bytes, seconds: (performance.now() - t0) / 1000 };
}

async function readAll(r: Awaited<ReturnType<typeof request>>, what: string): Promise<number> {
  if (r.statusCode !== 200) throw new Error(`${what}: HTTP ${r.statusCode} ${await r.body.text()}`);
  let n = 0;
  for await (const chunk of r.body) n += (chunk as Buffer).length;
  return n;
}

/** CPU used during a phase: by this process (senders, DMP and PSC simulators) and by each instance, as a share of the wall time. */
interface PhaseCpu { bench: number; instances: (number | undefined)[] }

async function publications(c: Cluster, exams: Exam[], quotas: CpuQuota[]): Promise<{ perMinute: number; cpu: PhaseCpu }> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const inst0 = quotas.map((q) => q.usedMs());
  const queue = [...exams];
  await Promise.all(Array.from({ length: 8 }, async () => { for (let e = queue.shift(); e; e = queue.shift()) await sendUntilAcked(c, e); }));
  await waitFor(() => exams.every((e) => dmpDocuments(c, e.ins).kos.length > 0), 300_000, 'every KOS in the DMP', 100);
  const ms = performance.now() - t0;
  const du = process.cpuUsage(cpu0);
  const cpu = {
    bench: round((du.user + du.system) / 1000 / ms),
    instances: quotas.map((q, i) => { const a = inst0[i], b = q.usedMs(); return a === undefined || b === undefined ? undefined : round((b - a) / ms); }),
  };
  return { perMinute: exams.length / (ms / 60_000), cpu };
}

async function peerThroughput(c: Cluster, e: Exam): Promise<number> {
  const token = await c.psc.issueAccessToken({ rpps: c.psc.clinicians[0].rpps, clientId: 'box-a' });
  const headers = { authorization: `Bearer ${token}`, 'kos-sopinstanceuid': kosUidOf(c, e), accept: DICOM_ACCEPT };
  const url = `${c.peerUrl}/dicom-web/studies/${e.study.studyInstanceUid}/series/${seriesOf(e)}`;
  const peer: Agent = await mtlsAgent(c.pki.boxes['box-b']);
  try {
    await readAll(await request(url, { dispatcher: peer, headers }), 'peer warm-up');
    const r = await load(10, async () => readAll(await request(url, { dispatcher: peer, headers }), 'peer retrieve'));
    return r.bytes / r.seconds / 1e6;
  } finally { await peer.close(); }
}

async function viewerRate(c: Cluster, e: Exam): Promise<number> {
  const tab = await clinicianWithSession(c, e, 50);
  try {
    const url = `${c.userUrl}/api/sessions/${tab.session}/dicom-web/studies/${e.study.studyInstanceUid}/series/${seriesOf(e)}/metadata`;
    const get = async () => readAll(await request(url, { dispatcher: tab.tab, headers: { cookie: tab.cookie(), accept: 'application/dicom+json' } }), 'viewer metadata');
    await get(); // the series lands in the shared cache
    const r = await load(50, get);
    return r.done / r.seconds;
  } finally { await tab.tab.close(); }
}

async function measure(n: number) {
  const quotas = Array.from({ length: n }, (_, i) => cpuQuota(`drimbox-bench-${process.pid}-${n}-${i}`, CPUS));
  const c = await startCluster({
    instances: n,
    launch: (argv, i) => quotas[i].wrap(argv),
    extra: { publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 0, concurrency: 4 }, log: { level: 'error' } },
  });
  try {
    const exams = Array.from({ length: PUBLICATIONS }, (_, k) => makeExam(k, 'small', `S${n}`));
    for (const e of exams) await c.orthanc.upload(e.study.files.map((f) => f.part10));
    const pub = await publications(c, exams, quotas);
    const peerMBs = PHASES.has('peer') ? await peerThroughput(c, exams[0]) : NaN;
    const viewerRps = PHASES.has('viewer') ? await viewerRate(c, exams[1]) : NaN;
    return { mechanism: quotas[0].mechanism, publicationsPerMinute: pub.perMinute, publicationCpu: pub.cpu, peerMBs, viewerRps };
  } finally {
    await c.close();
    for (const q of quotas) q.remove();
  }
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export async function run() {
  const one = await measure(1);
  const three = await measure(3);
  return {
    bench: 'scale-out',
    cpu_per_instance: CPUS,
    cgroup: one.mechanism,
    seconds_per_load: SECONDS,
    one: { peer_mb_s: round(one.peerMBs), viewer_rps: round(one.viewerRps, 1), publications_per_min: round(one.publicationsPerMinute, 1) },
    three: { peer_mb_s: round(three.peerMBs), viewer_rps: round(three.viewerRps, 1), publications_per_min: round(three.publicationsPerMinute, 1) },
    peer_scaling: round(three.peerMBs / one.peerMBs),
    viewer_scaling: round(three.viewerRps / one.viewerRps),
    publication_scaling: round(three.publicationsPerMinute / one.publicationsPerMinute),
    // CPU share of the wall time during the publication phase: near 1 for `bench` means this process
    // (senders, DMP simulator) is the bottleneck; near the quota for every instance means they are
    publication_cpu: { one: one.publicationCpu, three: three.publicationCpu },
    target: 2.5,
  };
}
