// Source proxy benchmark: retrieve a study from Orthanc directly vs through the box's peer API
// (dicomweb adapter; mutual TLS, and plain HTTP), interleaved runs, medians: the MG studies and the
// ANS reference CT (many ~230 KB JPEG-LS slices). Also the box's RSS growth while it streams ~1 GB of
// big instances and ~1 GB of small ones, and the DIMSE adapter against the DICOMweb one on the CT.
// Ratio = direct time / box time (1.0 = parity). The ceiling ratios time a byte relay (box-process.ts)
// the same way: what any Node proxy can reach here; vs_relay_* = relay time / box time.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Agent } from 'undici';
import { startOrthanc, type Orthanc } from '../test/helpers/orthanc.js';
import { testPki } from '../test/helpers/pki.js';
import { makeMgStudy } from '../sandbox/demo-data/mg-study.js';
import { relabel } from '../sandbox/demo-data/relabel.js';
import { makeReferenceCt } from '../sandbox/demo-data/reference-ct.js';
import { median, timedGet } from './consumer-client.js';
import { measureAdapters, uploadCt } from './pacs-adapters.js';
import { uploadSmallStudy } from './small-study.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
// for profiling work: BENCH_STUDIES=mg4 (or large) limits the studies, BENCH_GB=0 skips the 1 GB RSS
// run, BENCH_BOX_PROF=DIR writes a CPU profile of the box process into DIR, BENCH_BOX_FLAGS adds node
// flags to the box process (e.g. --trace-gc)
const STUDIES = (process.env.BENCH_STUDIES ?? 'mg4,large,ct').split(',');
const WITH_GB = process.env.BENCH_GB !== '0';
// smaller sizes for a quick smoke run: BENCH_CT_SLICES (ANS reference: 1300), BENCH_GB_MB (size of
// both RSS runs, 1000), BENCH_SMALL_COUNT (instances of the small-instance RSS run, 10000: ~100 KB
// each), BENCH_DIMSE=0 skips the DIMSE adapter run; BENCH_CT_DIR caches the generated CT
const CT_SLICES = Number(process.env.BENCH_CT_SLICES ?? 1300);
const GB_MB = Number(process.env.BENCH_GB_MB ?? 1000);
const SMALL_COUNT = Number(process.env.BENCH_SMALL_COUNT ?? 10_000);
const WITH_DIMSE = process.env.BENCH_DIMSE !== '0';
const CT_DIR = process.env.BENCH_CT_DIR ?? join(tmpdir(), 'drimbox-reference-ct');
const BOX_PROF = process.env.BENCH_BOX_PROF;
const BOX_FLAGS = (process.env.BENCH_BOX_FLAGS ?? '').split(' ').filter(Boolean);
// same-run A/B: BENCH_B_ENV="NAME=value ..." starts a second box with those environment variables,
// measured in the same interleaving (keys prefixed b_)
// BENCH_B_DIR runs that second box from another checkout (e.g. the previous commit, `git archive`d)
const B_ENV = process.env.BENCH_B_ENV ?? (process.env.BENCH_B_DIR ? '' : undefined);
const B_DIR = process.env.BENCH_B_DIR;

/** A study of `copies` × 4 full-field MG views (~17 MB each), all under one Study Instance UID. */
async function uploadMgStudy(orthanc: Orthanc, copies: number, seed: string): Promise<string> {
  const base = makeMgStudy({ size: 'full', seed: 1, patientId: `BENCH-${seed}` });
  for (let c = 0; c < copies; c++) {
    const files = c === 0 ? base.files.map((f) => f.part10) : await Promise.all(base.files.map(async (f) =>
      (await relabel(f.part10, {
        patientId: `BENCH-${seed}`, patientName: 'BENCH^MG', birthDate: '19640312', sex: 'F',
        studyInstanceUid: base.studyInstanceUid, accessionNumber: 'BENCH', studyDate: '20240115',
        studyDescription: 'BENCH', institution: 'BENCH', seed: `${seed}|${c}`, seriesNumber: c + 1,
      })).part10));
    await orthanc.upload(files);
  }
  return base.studyInstanceUid;
}

/** user + system CPU time of a process, ms (clock ticks of 10 ms): robust on a loaded machine */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

export async function run() {
  const orthanc = await startOrthanc({ gdcm: false });
  const pki = await testPki();
  const dir = mkdtempSync(join(tmpdir(), 'bench-box-'));
  const id = pki.boxes['box-a'];
  const config = {
    box: { name: 'box-a', organization: id.organization, retrieveLocationUid: '1.2.250.1.999.1.1' },
    dataDir: dir,
    user: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: id.chain, key: id.key } },
    peer: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: id.chain, key: id.key, ca: pki.ca.cert }, allowedPeers: [pki.demoClient.subjectDn] },
    hl7: { port: 1, allowedSenders: ['127.0.0.1'] },
    admin: { token: randomBytes(24).toString('hex') },
    log: { level: 'warn' },
    pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  // ports: the bench process picks them through env overrides (0 is refused by the validator)
  const { freePort } = await import('../test/helpers/ports.js');
  const startBoxProcess = async (extraEnv: Record<string, string>, cwd?: string) => {
    const env = {
      ...process.env,
      ...extraEnv,
      DRIMBOX_USER__PORT: String(await freePort()),
      DRIMBOX_PEER__PORT: String(await freePort()),
      DRIMBOX_HL7__PORT: String(await freePort()),
    };
    const prof = [...BOX_FLAGS, ...(BOX_PROF ? ['--cpu-prof', `--cpu-prof-dir=${BOX_PROF}`] : [])];
    const proc = spawn(process.execPath, [...prof, '--import', 'tsx', 'bench/box-process.ts', join(dir, 'config.json')], { env, cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      // the first JSON line says where the box listens; anything else (e.g. --trace-gc) goes to stderr
      createInterface({ input: proc.stdout! }).on('line', (l) => {
        if (l.startsWith('{"peerUrl"')) resolve(l); else process.stderr.write(l + '\n');
      });
      proc.once('exit', (code) => reject(new Error(`box exited (${code})`)));
    });
    return { proc, ...(JSON.parse(line) as { peerUrl: string; plainUrl: string; ceilingPlainUrl: string; ceilingMtlsUrl: string }) };
  };
  const boxA = await startBoxProcess({});
  const child = boxA.proc;
  const { peerUrl, plainUrl, ceilingPlainUrl, ceilingMtlsUrl } = boxA;
  const boxB = B_ENV !== undefined ? await startBoxProcess(Object.fromEntries(B_ENV.split(' ').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string])), B_DIR) : undefined;
  const mtls = new Agent({ connect: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.demoClient.cert), key: readFileSync(pki.demoClient.key), servername: 'localhost' } });
  try {
    const results: Record<string, unknown> = { bench: 'source-proxy', runs: RUNS };
    // RSS growth while the box streams ~1 GB through mTLS: big instances first (the first request a
    // fresh box serves), then as many small ones
    const rssRun = async (uid: string, key: string) => {
      const before = rssKb(child.pid!);
      let peak = before;
      const sampler = setInterval(() => { peak = Math.max(peak, rssKb(child.pid!)); }, 20);
      const g = await timedGet(`${peerUrl}/dicom-web/studies/${uid}`, {}, mtls);
      clearInterval(sampler);
      peak = Math.max(peak, rssKb(child.pid!));
      results[`${key}_mb`] = Math.round(g.bytes / 1e6);
      results[`rss_growth_mb_${key}`] = Math.round((peak - before) / 1024);
      return { before, peak };
    };
    if (WITH_GB) {
      const big = await uploadMgStudy(orthanc, Math.max(1, Math.round(GB_MB / 68)), 'gig');
      const { before, peak } = await rssRun(big, '1gb');
      results.box_rss_idle_mb = Math.round(before / 1024);
      results.box_rss_peak_mb = Math.round(peak / 1024);
      const small = await uploadSmallStudy(orthanc, SMALL_COUNT, Math.round((GB_MB * 1e6) / SMALL_COUNT / 1024), 'small');
      results.small_instances = SMALL_COUNT;
      await rssRun(small, '1gb_small');
    }
    const ct = STUDIES.includes('ct') || WITH_DIMSE ? await makeReferenceCt(CT_DIR, { slices: CT_SLICES }) : undefined;
    const studies = ([['mg4', 1], ['large', 6], ['ct', 0]] as [string, number][]).filter(([label]) => STUDIES.includes(label));
    for (const [label, copies] of studies) {
      let uid: string;
      if (label === 'ct') {
        await uploadCt(orthanc, ct!);
        uid = ct!.studyInstanceUid;
      } else uid = await uploadMgStudy(orthanc, copies, label);
      const direct: number[] = [], viaMtls: number[] = [], viaPlain: number[] = [], pipeMtls: number[] = [], pipePlain: number[] = [];
      const firstBox: number[] = [], firstPipe: number[] = [];
      const cpuMtls: number[] = [], cpuPlain: number[] = [];
      const bMtls: number[] = [], bPlain: number[] = [], bCpuMtls: number[] = [], bCpuPlain: number[] = [];
      const boxCpu = async (pid: number, get: () => Promise<unknown>, into: number[]) => {
        const c0 = cpuMs(pid);
        await get();
        into.push(cpuMs(pid) - c0);
      };
      let bytes = 0;
      // warm-up, then interleaved runs
      await timedGet(`${orthanc.dicomWebUrl}/studies/${uid}`);
      await timedGet(`${peerUrl}/dicom-web/studies/${uid}`, {}, mtls);
      await timedGet(`${ceilingMtlsUrl}/dicom-web/studies/${uid}`, {}, mtls);
      if (boxB) await timedGet(`${boxB.peerUrl}/dicom-web/studies/${uid}`, {}, mtls);
      for (let i = 0; i < RUNS; i++) {
        const d = await timedGet(`${orthanc.dicomWebUrl}/studies/${uid}`);
        bytes = d.bytes;
        direct.push(d.ms);
        await boxCpu(child.pid!, async () => {
          const g = await timedGet(`${peerUrl}/dicom-web/studies/${uid}`, {}, mtls);
          viaMtls.push(g.ms);
          firstBox.push(g.firstByteMs);
        }, cpuMtls);
        await boxCpu(child.pid!, async () => viaPlain.push((await timedGet(`${plainUrl}/dicom-web/studies/${uid}`)).ms), cpuPlain);
        const p = await timedGet(`${ceilingMtlsUrl}/dicom-web/studies/${uid}`, {}, mtls);
        pipeMtls.push(p.ms);
        firstPipe.push(p.firstByteMs);
        pipePlain.push((await timedGet(`${ceilingPlainUrl}/dicom-web/studies/${uid}`)).ms);
        if (boxB) {
          const b = boxB.proc.pid!;
          await boxCpu(b, async () => bMtls.push((await timedGet(`${boxB.peerUrl}/dicom-web/studies/${uid}`, {}, mtls)).ms), bCpuMtls);
          await boxCpu(b, async () => bPlain.push((await timedGet(`${boxB.plainUrl}/dicom-web/studies/${uid}`)).ms), bCpuPlain);
        }
      }
      const prefix = label === 'mg4' ? '' : `${label}_`;
      Object.assign(results, {
        [`${prefix}study_mb`]: Math.round(bytes / 1e6),
        [`${prefix}direct_ms`]: Math.round(median(direct)),
        [`${prefix}box_mtls_ms`]: Math.round(median(viaMtls)),
        [`${prefix}box_plain_ms`]: Math.round(median(viaPlain)),
        [`${prefix}relay_mtls_ms`]: Math.round(median(pipeMtls)),
        [`${prefix}relay_plain_ms`]: Math.round(median(pipePlain)),
        [`${prefix}ratio_mtls`]: +(median(direct) / median(viaMtls)).toFixed(2),
        [`${prefix}ratio_plain`]: +(median(direct) / median(viaPlain)).toFixed(2),
        // the targets: the box against the same-run byte relay (TLS for mTLS, TCP for plain)
        [`${prefix}vs_relay_mtls`]: +(median(pipeMtls) / median(viaMtls)).toFixed(2),
        [`${prefix}vs_relay_plain`]: +(median(pipePlain) / median(viaPlain)).toFixed(2),
        [`${prefix}first_byte_extra_ms`]: +(median(firstBox) - median(firstPipe)).toFixed(1),
        // CPU the box spent per retrieve (user + system): what the box costs, less sensitive to load
        [`${prefix}box_cpu_mtls_ms`]: median(cpuMtls),
        [`${prefix}box_cpu_plain_ms`]: median(cpuPlain),
        // the ceiling: a byte relay in the box's process (TCP or TLS, no HTTP, no checks)
        [`${prefix}ceiling_ratio_mtls`]: +(median(direct) / median(pipeMtls)).toFixed(2),
        [`${prefix}ceiling_ratio_plain`]: +(median(direct) / median(pipePlain)).toFixed(2),
      });
      if (boxB) {
        Object.assign(results, {
          b_env: B_ENV,
          ...(B_DIR ? { b_dir: B_DIR } : {}),
          [`${prefix}b_ratio_mtls`]: +(median(direct) / median(bMtls)).toFixed(2),
          [`${prefix}b_ratio_plain`]: +(median(direct) / median(bPlain)).toFixed(2),
          [`${prefix}b_vs_relay_mtls`]: +(median(pipeMtls) / median(bMtls)).toFixed(2),
          [`${prefix}b_vs_relay_plain`]: +(median(pipePlain) / median(bPlain)).toFixed(2),
          [`${prefix}b_box_cpu_mtls_ms`]: median(bCpuMtls),
          [`${prefix}b_box_cpu_plain_ms`]: median(bCpuPlain),
        });
      }
    }
    // the DIMSE adapter against the DICOMweb adapter on the CT (its own Orthanc, in this process)
    if (WITH_DIMSE) Object.assign(results, await measureAdapters(ct!, RUNS));
    return results;
  } finally {
    for (const proc of [child, boxB?.proc]) {
      if (!proc) continue;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited; // the CPU profile is written on exit
    }
    await mtls.close();
    await orthanc.stop();
  }
}
