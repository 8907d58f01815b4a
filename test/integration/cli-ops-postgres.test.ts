// `drimbox backup`/`restore` on PostgreSQL (database.url = postgres://…): pg_dump custom format
// with the cluster's own client tools, pg_restore into a fresh database, then over a full one.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { rawTestBoxConfig } from '../helpers/box.js';
import { drimbox, writeConfig } from '../helpers/cli.js';
import { newPostgresDatabase } from '../helpers/stores.js';
import { openStore } from '../../gateway/src/store/database.js';

t.test('backup and restore on PostgreSQL (pg_dump custom format, pg_restore)', async (t) => {
  // the cluster's own client tools (test/helpers/postgres.ts runs the newest installed version)
  const pgBin = `/usr/lib/postgresql/${readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))[0]}/bin`;
  const url = await newPostgresDatabase();
  const store = await openStore(url);
  const kos = Buffer.from([0x44, 0x49, 0x43, 0x4d, 0x00, 0xff, 0x10]); // binary survives dump and restore
  const now = Date.now();
  try {
    const job = await store.db.insertInto('publication_job').values({
      kind: 'publish', idem_key: 'ops-pg-1', set_id: '1.2.250.1.999.1.1.77.5', document_id: '1.2.250.1.999.1.1.77.5.1', version: 1, control_id: 'OPS-PG-1',
      study_uids: '1.2.3', payload: '{}', state: 'done', failed_at_state: null, next_attempt_at: now, window_start: now, study_waiting_since: null,
      last_error: null, note: null, kos_id: null, target_kos_id: null, created_at: now, updated_at: now,
    }).returning('id').executeTakeFirstOrThrow();
    await store.db.insertInto('published_kos').values({
      job_id: job.id, set_id: '1.2.250.1.999.1.1.77.5', sop_instance_uid: '2.25.42', patient_id: '279035121518989', part10: kos,
      refs: '{}', instance_count: 4, status: 'current', kos_entry_uuid: 'urn:uuid:1', report_entry_uuid: null, created_at: now, published_at: now, ended_at: null, report_unique_id: null,
    }).execute();
  } finally {
    await store.close();
  }
  const raw = await rawTestBoxConfig({ pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'ops-pacs-')) }, extra: { roles: ['consumer'] } });
  const config = (dbUrl: string) => writeConfig({ ...raw, database: { url: dbUrl } });
  const dir = mkdtempSync(join(tmpdir(), 'ops-pg-backup-'));
  const file = join(dir, 'drimbox.dump');
  const b = await drimbox(['backup', file, '--config', config(url), '--pg-bin', pgBin]);
  t.equal(b.status, 0, b.stderr);
  t.match(b.stdout, /backup of postgres:\/\/drimbox@127\.0\.0\.1:\d+\/case_\d+ written to .*drimbox\.dump \(\d+ bytes, pg_dump custom format\)/);
  t.equal(readFileSync(file).subarray(0, 5).toString('latin1'), 'PGDMP', 'a pg_dump custom-format archive');
  t.equal(statSync(file).mode & 0o777, 0o600, 'readable by its owner only');

  const target = await newPostgresDatabase();
  const r = await drimbox(['restore', file, '--config', config(target), '--pg-bin', pgBin]);
  t.equal(r.status, 0, r.stderr);
  const restored = await openStore(target); // the migrator finds every migration applied
  try {
    t.match(await restored.db.selectFrom('publication_job').selectAll().execute(), [{ control_id: 'OPS-PG-1', state: 'done', set_id: '1.2.250.1.999.1.1.77.5' }], 'the publication is in the restored database');
    const k = await restored.db.selectFrom('published_kos').selectAll().executeTakeFirstOrThrow();
    t.same(Buffer.from(k.part10), kos, 'with its KOS bytes');
  } finally {
    await restored.close();
  }
  const again = await drimbox(['restore', file, '--config', config(target), '--pg-bin', pgBin]);
  t.equal(again.status, 1, 'a database that holds tables is not restored over without --force');
  t.match(again.stderr, /already holds tables: stop every instance and pass --force/);
  const forced = await drimbox(['restore', file, '--config', config(target), '--pg-bin', pgBin, '--force']);
  t.equal(forced.status, 0, forced.stderr);
  const check = new pg.Client({ connectionString: target });
  await check.connect();
  t.equal((await check.query('SELECT count(*)::int AS n FROM publication_job')).rows[0].n, 1, '--force replaces the tables, it does not add to them');
  await check.end();
  const doctor = await drimbox(['doctor', '--config', config(target)]);
  t.match(doctor.stdout, /^OK {4}database: postgres:\/\/drimbox@127\.0\.0\.1:\d+\/case_\d+: PostgreSQL \d+/m, 'doctor reaches the PostgreSQL database');
  const missingTool = await drimbox(['backup', join(dir, 'other.dump'), '--config', config(url), '--pg-bin', '/nonexistent']);
  t.equal(missingTool.status, 1);
  t.match(missingTool.stderr, /\/nonexistent\/pg_dump: not found/);
  t.notOk(existsSync(join(dir, 'other.dump')), 'a failed backup leaves no file');
});
