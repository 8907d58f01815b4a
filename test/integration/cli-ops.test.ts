// `drimbox backup`/`restore` of a running box on SQLite: an online backup, restored into a fresh data
// directory where a box finds the publications. PostgreSQL: cli-ops-postgres.test.ts; doctor:
// cli-doctor.test.ts; --version and healthcheck: cli-healthcheck.test.ts.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { rawTestBoxConfig, startTestBox, mtlsAgent } from '../helpers/box.js';
import { drimbox, writeConfig } from '../helpers/cli.js';
import { startDmpBench, sendHl7, settledJob } from '../helpers/publication-env.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createSourceRole } from '../../gateway/src/source/role.js';
import type { Box } from '../../gateway/src/box.js';

t.test('backup of a running box (SQLite) and restore into a fresh data directory', async (t) => {
  const bench = await startDmpBench();
  t.teardown(() => bench.sim.close());
  const patient = { ins: '279035121518989', ipp: 'IPP-OPS-1', birthName: 'PAT-OPS', givenNames: ['CAMILLE'], birthDate: '19790328', sex: 'F' as const };
  const study = makeMgStudy({ patientId: patient.ipp, accession: 'ACC-OPS-1', seed: 21 });
  const extra = { roles: ['source'], dmp: bench.dmpConfig, publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 1 } };
  const pacs = { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'ops-pacs-')) };
  const plugins = [dmpService, createSourceRole({ retryBaseMs: 100, maxRetryDelayMs: 500, pollMs: 200 })];
  const box = await startTestBox({ pacs, extra, boxOptions: { plugins } });
  t.teardown(() => box.close());
  await box.pacs.store((async function* () { for (const f of study.files) yield f.part10; })());
  const report: ReportInput = {
    patient,
    studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: 'ACC-OPS-1', modality: 'MG', date: '20240115', description: 'MAMMOGRAPHIE BILATERALE' }],
    setId: '1.2.250.1.999.1.1.77.9',
  };
  const ack = await sendHl7(box.addresses.mllp.port, oruMessage(buildReportCda(report), report, { controlId: 'OPS-1' }));
  t.equal(ack.code, 'AA', 'the RIS report is acknowledged');
  t.equal((await settledJob(box, 'OPS-1')).state, 'done', 'and published to the DMP');
  const before = await adminGet(box, '/admin/publications');

  // the CLI reads the same database through its own config file while the box keeps running
  const raw = await rawTestBoxConfig({ pacs, extra });
  const liveConfig = writeConfig({ ...raw, dataDir: box.config.dataDir });
  const dir = mkdtempSync(join(tmpdir(), 'ops-backup-'));
  const file = join(dir, 'drimbox-backup.db');
  const b = await drimbox(['backup', file, '--config', liveConfig]);
  t.equal(b.status, 0, b.stderr);
  t.match(b.stdout, /backup of .*drimbox\.db written to .*drimbox-backup\.db \(\d+ bytes, SQLite database\)/);
  t.equal(statSync(file).mode & 0o777, 0o600, 'the backup is readable by its owner only');
  t.same(readdirSync(dir), ['drimbox-backup.db'], 'one self-contained file (no -wal beside it)');
  const again = await drimbox(['backup', file, '--config', liveConfig]);
  t.equal(again.status, 1, 'a backup never overwrites another');
  t.match(again.stderr, /exists: a backup never overwrites another one/);

  const userPort = Number(new URL(box.userUrl).port);
  const underRunningBox = await drimbox(['restore', file, '--config', writeConfig({ ...raw, dataDir: box.config.dataDir, user: { ...(raw.user as object), port: userPort } }), '--force']);
  t.equal(underRunningBox.status, 1, 'no restore under a running box');
  t.match(underRunningBox.stderr, /the box is running \(its user port 127\.0\.0\.1:\d+ is taken\): stop it first/);

  // restore into a fresh dataDir, and a box started on it has the publication
  const freshDir = mkdtempSync(join(tmpdir(), 'ops-restored-'));
  const restoredConfig = writeConfig({ ...raw, dataDir: freshDir });
  const r = await drimbox(['restore', file, '--config', restoredConfig]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /restored to .*drimbox\.db$/m);
  const restored = await startTestBox({ pacs, extra: { ...extra, dataDir: freshDir }, boxOptions: { plugins } });
  try {
    const listing = await adminGet(restored, '/admin/publications');
    t.match(listing, { total: 1, items: [{ controlId: 'OPS-1', state: 'published', setId: report.setId, kosUid: String }] }, 'the restored box lists the published report');
    t.same(listing, before, 'exactly as the running box listed it');
  } finally {
    await restored.close();
  }

  // over an existing database: refused without --force; with it, the old one is kept beside
  const refused = await drimbox(['restore', file, '--config', restoredConfig]);
  t.equal(refused.status, 1);
  t.match(refused.stderr, /drimbox\.db exists: stop the box and pass --force/);
  const forced = await drimbox(['restore', file, '--config', restoredConfig, '--force']);
  t.equal(forced.status, 0, forced.stderr);
  const kept = /kept as (\S+)\)/.exec(forced.stdout)?.[1];
  t.ok(kept && existsSync(kept), `the replaced database is kept (${forced.stdout.trim()})`);

  const notDb = join(dir, 'not-a-backup.db');
  writeFileSync(notDb, 'hello');
  const bad = await drimbox(['restore', notDb, '--config', restoredConfig, '--force']);
  t.equal(bad.status, 1, 'a file that is not a database is refused');
  t.match(bad.stderr, /restore failed: .*not-a-backup\.db/);
});

async function adminGet(box: Box, path: string): Promise<unknown> {
  const agent = await mtlsAgent();
  try {
    const r = await request(`${box.userUrl}${path}`, { dispatcher: agent, headers: { authorization: `Bearer ${box.config.admin.token}` } });
    return await r.body.json();
  } finally {
    await agent.close();
  }
}

