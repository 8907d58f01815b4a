// kill -9 at every step of a publication loses nothing and publishes nothing twice. The box runs in a
// child process (test/helpers/publication-child.ts); it is SIGKILLed when it reports reaching a step,
// then restarted on the same data directory and must finish the job: exactly one KOS (and one
// report) per report in the DMP, including after a kill between the DMP's answer and its recording.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DrimboxConfig } from '../../gateway/src/config/schema.js';
import { openStore } from '../../gateway/src/store/database.js';
import { createPacs } from '../../gateway/src/pacs/index.js';
import { DmpClient, type ClinicianIdentity } from '../../gateway/src/dmp/client.js';
import { testPki } from '../helpers/pki.js';
import { testBoxConfig } from '../helpers/box.js';
import { dmpTestPki } from '../helpers/dmp-pki.js';
import { startDmpBench, sendHl7, type DmpBench } from '../helpers/publication-env.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { nirWithKey } from '../../sandbox/demo-data/catalogue.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { readFileSync } from 'node:fs';

const clinician: ClinicianIdentity = { rpps: '810000000001', displayName: 'ALICE GENERALISTE', roles: [{ code: '10', codeSystem: '1.2.250.1.71.1.2.7' }] };
const IPP = 'IPP-KILL-1';

let bench: DmpBench;
let configFile: string;
let config: DrimboxConfig;
let study: ReturnType<typeof makeMgStudy>;
let reader: DmpClient;

interface Child { proc: ChildProcess; lines: string[]; waitLine(re: RegExp, ms?: number): Promise<RegExpMatchArray>; exited: Promise<void> }

function startChild(stopAt?: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/publication-child.ts', configFile], {
    env: { ...process.env, ...(stopAt ? { DRIMBOX_TEST_STOP_AT: stopAt } : { DRIMBOX_TEST_STOP_AT: '' }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of [...waiters]) {
      const m = l.match(w.re);
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
    }
  });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  return {
    proc, lines, exited,
    waitLine(re, ms = 30_000) {
      for (const l of lines) { const m = l.match(re); if (m) return Promise.resolve(m); }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child did not print ${re} (got: ${lines.join(' | ')})`)), ms);
        waiters.push({ re, resolve: (m) => { clearTimeout(timer); resolve(m); } });
      });
    },
  };
}

function report(ins: string, n: number): ReportInput {
  return {
    patient: { ins, ipp: IPP, birthName: 'KILL', givenNames: ['TEST'], birthDate: '19700101', sex: 'F' },
    studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: 'ACC-KILL', modality: 'MG', date: '20240115', description: 'MAMMO' }],
    setId: `1.2.250.1.999.1.1.88.${n}`,
  };
}

async function dmpCounts(ins: string): Promise<{ kos: number; reports: number }> {
  const patientId = `${ins}^^^&1.2.250.1.213.1.4.10&ISO^NH`;
  const kos = await reader.findDocuments({ patientId, typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician);
  const reports = await reader.findDocuments({ patientId, typeCodes: [{ code: '18748-4', scheme: '2.16.840.1.113883.6.1' }] }, clinician);
  return { kos: kos.length, reports: reports.length };
}

t.before(async () => {
  bench = await startDmpBench();
  const pki = await testPki();
  const id = pki.boxes['box-a'];
  const dataDir = mkdtempSync(join(tmpdir(), 'drimbox-kill-'));
  // the child box (box-a) listens on free ports (0) and announces its MLLP port
  config = await testBoxConfig({
    pacs: { kind: 'folder', path: join(dataDir, 'pacs') },
    extra: { dataDir, dmp: bench.dmpConfig, publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 1 } },
  });
  configFile = join(dataDir, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));

  // seed the folder PACS in the box's own database before the box runs
  study = makeMgStudy({ patientId: IPP, accession: 'ACC-KILL', seed: 21 });
  const store = await openStore(`sqlite:${join(dataDir, 'drimbox.db')}`);
  const pacs = await createPacs(config.pacs, { store });
  await pacs.store((async function* () { for (const f of study.files) yield f.part10; })());
  await pacs.close();
  await store.close();

  const dmpPki = await dmpTestPki();
  reader = new DmpClient({
    endpoints: { registry: bench.sim.registryUrl, repository: bench.sim.repositoryUrl },
    tls: { cert: readFileSync(id.chain, 'utf8'), key: readFileSync(id.key, 'utf8'), ca: dmpPki.caPem },
    vihf: {
      signingCert: readFileSync(id.chain, 'utf8'), signingKey: readFileSync(id.key, 'utf8'), finess: '101235555',
      lpsName: 'DRIMbox', lpsVersion: '0.1.0', lpsHomologationId: 'DEV', sector: { code: 'SA07', codeSystem: '1.2.250.1.71.4.2.4' },
    },
    submitter: { sourceId: '1.2.250.1.999.1.1.8121' },
  });
});
t.teardown(async () => {
  await reader?.close();
  await bench?.sim.close();
});

const STEPS = ['resolving', 'kos-built', 'submitting', 'sent'] as const;

STEPS.forEach((step, i) => {
  t.test(`SIGKILL at "${step}", restart: published exactly once`, async (t) => {
    const ins = nirWithKey(String(2700175000100 + i));
    const first = startChild(step);
    t.teardown(() => { first.proc.kill('SIGKILL'); });
    const port = Number((await first.waitLine(/^READY (\d+)/))[1]);
    const ack = await sendHl7(port, oruMessage(buildReportCda(report(ins, i)), report(ins, i), { controlId: `KILL-${step}` }));
    t.equal(ack.code, 'AA', 'acknowledged (durably stored)');
    const [, jobId] = await first.waitLine(new RegExp(`^STEP ${step} (\\d+)`));
    first.proc.kill('SIGKILL');
    await first.exited;
    t.pass(`killed with SIGKILL at ${step}`);

    const before = await dmpCounts(ins);
    t.equal(before.kos, step === 'sent' ? 1 : 0, step === 'sent' ? 'the DMP got the KOS, the box never recorded the answer' : 'nothing in the DMP yet');

    const second = startChild();
    t.teardown(() => { second.proc.kill('SIGKILL'); });
    const settled = await second.waitLine(new RegExp(`^SETTLED ${jobId} (\\w+)`));
    t.equal(settled[1], 'done', 'the restarted box finished the job');
    second.proc.kill('SIGTERM');
    await second.exited;

    t.same(await dmpCounts(ins), { kos: 1, reports: 1 }, 'exactly one KOS and one report in the DMP');
  });
});

t.test('a resent message after a crash at "kos-built" does not publish twice', async (t) => {
  const ins = nirWithKey('2700175000199');
  const r = report(ins, 99);
  const first = startChild('kos-built');
  t.teardown(() => { first.proc.kill('SIGKILL'); });
  const port = Number((await first.waitLine(/^READY (\d+)/))[1]);
  t.equal((await sendHl7(port, oruMessage(buildReportCda(r), r, { controlId: 'RESEND-1' }))).code, 'AA');
  const [, jobId] = await first.waitLine(/^STEP kos-built (\d+)/);
  first.proc.kill('SIGKILL');
  await first.exited;
  const second = startChild();
  t.teardown(() => { second.proc.kill('SIGKILL'); });
  const port2 = Number((await second.waitLine(/^READY (\d+)/))[1]);
  // the RIS did not trust the first ACK and sends the report again
  t.equal((await sendHl7(port2, oruMessage(buildReportCda(r), r, { controlId: 'RESEND-2' }))).code, 'AA');
  await second.waitLine(new RegExp(`^SETTLED ${jobId} done`));
  await new Promise((res) => setTimeout(res, 300));
  t.notOk(second.lines.some((l) => l.startsWith('SETTLED') && !l.startsWith(`SETTLED ${jobId} `)), 'no second job ran');
  second.proc.kill('SIGTERM');
  await second.exited;
  t.same(await dmpCounts(ins), { kos: 1, reports: 1 });
});
