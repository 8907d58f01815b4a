// A consumer box restarted in the middle of a batch's prefetch: the batch resumes by itself, and no
// series that was complete before the restart is fetched again from its source box.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPki } from '../helpers/pki.js';
import { startConsumerNetwork, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent, sqliteOf } from '../helpers/box.js';
import { waitFor } from '../helpers/wait.js';
import { publishScreeningExams, rowOf, screeningClient } from '../helpers/screening.js';

let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;

t.before(async () => {
  // one case at a time: the restart lands while most of the batch is still queued
  net = await startConsumerNetwork({ consumerOrthanc: false, consumerConfig: { screening: { concurrency: 1, perSourceConcurrency: 1, retryBaseMs: 50 } } });
  agent = await mtlsAgent();
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

t.test('restart mid-prefetch: resumes, never fetches a completed series again', async (t) => {
  const patients = await publishScreeningExams(net, 12, { seed: 'restart', withPrior: (i) => i % 2 === 0, size: [512, 384], sources: ['box-a'] });
  const { cookie } = await net.login();
  const r = await screeningClient(net, agent, cookie).post('/api/screening/batches', { name: 'Redémarrage', rows: patients.map(rowOf) });
  t.equal(r.status, 201, r.text);
  const id = r.json.id;
  const before = await waitFor(async () => { const b = await screeningClient(net, agent, cookie).batch(id); return b.counts.ready >= 2 && b; }, 60_000, 'two cases ready');
  await net.restartConsumer();
  const readyBefore = before.cases.filter((c: any) => c.state === 'ready').map((c: any) => c.id);
  t.ok(readyBefore.length < 12, `restarted with ${12 - readyBefore.length} cases still to fetch`);

  // the session store of box B survived (same data directory): the same login still works
  const api = screeningClient(net, agent, cookie);
  const done = await waitFor(async () => { const b = await api.batch(id); return b.state === 'ready' && b; }, 90_000, 'ready after the restart', 200);
  t.equal(done.counts.ready, 12, 'every case ready');
  for (const c of done.cases.filter((x: any) => readyBefore.includes(x.id))) t.equal(c.instances.done, c.instances.total, 'a case ready before the restart is still complete');

  // the cache's own record of upstream fetches: each series fetched (successfully) exactly once
  const rows = sqliteOf(net.boxB).prepare("SELECT route, status FROM audit WHERE direction = 'peer-out' AND route LIKE 'https://%'").all() as { route: string; status: number }[];
  const ok = new Map<string, number>();
  for (const row of rows) if (row.status === 200) ok.set(row.route, (ok.get(row.route) ?? 0) + 1);
  const series = patients.length + patients.filter((p) => p.prior).length;
  t.equal(ok.size, series, 'every series fetched');
  t.ok([...ok.values()].every((n) => n === 1), 'none fetched twice');
});

/** runs the drimbox CLI (bin/drimbox.js) asynchronously: the box it talks to runs in this process */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/drimbox.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('drimbox batch create FILE.csv, then drimbox batch status ID follows the progress to ready', async (t) => {
  const patients = await publishScreeningExams(net, 3, { seed: 'cli', sources: ['box-a'] });
  const { cookie } = await net.login();
  const session = cookie.split('=')[1];
  const dir = mkdtempSync(join(tmpdir(), 'batch-cli-'));
  const file = join(dir, 'lot-cli.csv');
  writeFileSync(file, ['ins,insOid,birthDate,sex,familyName,accessionNumber', ...patients.map((p) => `${p.ins},${rowOf(p).insOid},${p.birthDate},F,${p.familyName},${p.accession}`)].join('\n'));
  const conn = ['--url', net.boxB.userUrl, '--session', session, '--ca', (await testPki()).ca.cert];
  const created = await cli(['batch', 'create', file, '--priors', '0', ...conn]);
  t.equal(created.code, 0, created.stderr);
  const [id] = created.stdout.split('\t');
  t.match(created.stdout, /lot-cli \[.*\] 0\/3 dossiers/);
  const status = await cli(['batch', 'status', id, ...conn]);
  t.equal(status.code, 0, status.stderr);
  const lines = status.stdout.trim().split('\n');
  t.match(lines.at(-1), /\[█{30}\] 3\/3 dossiers \(3 prêts, 0 en échec, 0 en cours\) · 12\/12 images .* · ready/, 'the last bar: ready');
  const bad = await cli(['batch', 'status', 'nope', ...conn]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /404 Lot inconnu/);
});
