// The store: both backends open at the baseline schema, migrations run once, and a SQLite file made
// by the old migrator (schema_migrations, possibly a step behind) is adopted with its rows.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../../gateway/src/store/database.js';
import { legacyMigrations } from '../../gateway/src/store/legacy-migrations.js';
import { forEachStore } from '../helpers/stores.js';

forEachStore(t, 'a fresh store has the whole schema and reopens without migrating again', async (t, store, url) => {
  const tables = (await store.db.introspection.getTables()).map((x) => x.name);
  for (const name of ['audit', 'audit_anchor', 'sessions', 'login_transactions', 'publication_job', 'published_kos', 'published_kos_study',
    'rejected_instance', 'folder_study', 'folder_series', 'folder_instance', 'consumer_calls', 'consumer_cache_series', 'consumer_import_jobs']) {
    t.ok(tables.includes(name), `table ${name}`);
  }
  const now = Date.now(); // epoch ms does not fit PostgreSQL's integer: the columns are bigint, read back as numbers
  const { id } = await store.db.insertInto('publication_job').values({
    kind: 'publish', idem_key: 'k', set_id: 's', payload: '{}', state: 'received', next_attempt_at: now, window_start: now, created_at: now, updated_at: now,
    document_id: null, version: null, control_id: null, failed_at_state: null, study_waiting_since: null, last_error: null, note: null, kos_id: null, target_kos_id: null,
  }).returning('id').executeTakeFirstOrThrow();
  t.equal(typeof id, 'number');
  const row = await store.db.selectFrom('publication_job').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  t.equal(row.next_attempt_at, now);
  const { n } = await store.db.selectFrom('publication_job').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  t.equal(Number(n), 1);
  await store.db.insertInto('published_kos').values({
    job_id: id, set_id: 's', sop_instance_uid: '1.2', patient_id: 'p', part10: Buffer.from([0, 1, 2, 255]), refs: '{}', instance_count: 0, status: 'built', created_at: now,
    kos_entry_uuid: null, report_entry_uuid: null, published_at: null, ended_at: null, report_unique_id: null,
  }).execute();
  const kos = await store.db.selectFrom('published_kos').select('part10').executeTakeFirstOrThrow();
  t.same([...kos.part10], [0, 1, 2, 255], 'binary columns round-trip as bytes');

  const again = await openStore(url);
  t.teardown(() => again.close());
  const n2 = await again.db.selectFrom('publication_job').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  t.equal(Number(n2.n), 1, 'reopening keeps the rows');
});

t.test('a SQLite file made by the old migrator, a step behind, is finished and adopted', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'store-legacy-')), 'drimbox.db');
  const raw = new Database(file);
  raw.exec('CREATE TABLE schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const last = legacyMigrations.findIndex((m) => m.id === '060-audit-chain');
  for (const m of legacyMigrations.slice(0, last)) { raw.exec(m.sql); raw.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(m.id, 'x'); }
  raw.prepare(`INSERT INTO publication_job (kind, idem_key, set_id, payload, state, next_attempt_at, window_start, created_at, updated_at)
    VALUES ('publish', 'old', 's', '{}', 'done', 1, 1, 1, 1)`).run();
  raw.close();

  const store = await openStore(`sqlite:${file}`);
  t.teardown(() => store.close());
  const jobs = await store.db.selectFrom('publication_job').select('idem_key').execute();
  t.same(jobs, [{ idem_key: 'old' }], 'the old rows are kept');
  const cols = (await store.db.introspection.getTables()).find((x) => x.name === 'audit')!.columns.map((c) => c.name);
  t.ok(cols.includes('hash'), 'the missing legacy step (audit chain) was applied');
  const tables = (await store.db.introspection.getTables()).map((x) => x.name);
  t.notOk(tables.includes('schema_migrations'), 'the old migrator table is gone');
  const applied = await store.db.selectFrom('kysely_migration' as never).select('name' as never).execute();
  t.same(applied, [{ name: '001-baseline' }]);
});
