// The audit trail's hash chain (an edited, emptied or deleted row is named), retention that keeps the
// chain verifiable from its anchor, rows written before the chain, concurrent writers sharing one
// chain, and the folding into accesses. On both stores (SQLite, PostgreSQL).
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../../gateway/src/store/database.js';
import { AuditLog, type AuditEntry } from '../../gateway/src/store/audit.js';
import { foldAccesses, accessKind } from '../../gateway/src/store/audit-access.js';
import { legacyMigrations as migrations } from '../../gateway/src/store/legacy-migrations.js';
import { forEachStore } from '../helpers/stores.js';

const entry = (over: Partial<AuditEntry> = {}): AuditEntry => ({
  direction: 'peer-in', actorDn: 'CN=box-b', actorRpps: '810000000001', route: '/dicom-web/studies/:study/series/:series/instances/:instance/frames/:frames',
  method: 'GET', patientId: '279035121518989', studyUid: '1.2.3', kosUid: '1.2.9', status: 200, bytes: 1000, durationMs: 1.25, ...over,
});

forEachStore(t, 'an edited, emptied or deleted row breaks the chain at that row', async (t, store, url) => {
  const audit = await AuditLog.open(store);
  for (let i = 0; i < 5; i++) void audit.record(entry({ bytes: i }));
  t.same(await audit.verify(), { ok: true, rows: 5 });
  await store.db.updateTable('audit').set({ actor_rpps: '810000000099' }).where('id', '=', 3).execute();
  t.match(await audit.verify(), { ok: false, brokenAt: 3, rows: 2, reason: /hash mismatch/ });
  await store.db.updateTable('audit').set({ actor_rpps: '810000000001' }).where('id', '=', 3).execute();
  t.same(await audit.verify(), { ok: true, rows: 5 }, 'restored');
  await store.db.updateTable('audit').set({ hash: null }).where('id', '=', 4).execute();
  t.match(await (await AuditLog.open(store)).verify(), { ok: false, brokenAt: 4 }, 'an emptied hash is not re-computed at the next start');

  const again = await openStore(url);
  t.teardown(() => again.close());
  const a2 = await AuditLog.open(again);
  await again.db.deleteFrom('audit').where('id', '=', 2).execute();
  t.match(await a2.verify(), { ok: false, brokenAt: 3, reason: 'row 2 missing before it' });
});

forEachStore(t, 'retention deletes old rows and the chain verifies from its anchor', async (t, store) => {
  const audit = await AuditLog.open(store);
  for (let i = 0; i < 3; i++) await audit.record(entry());
  await new Promise((r) => setTimeout(r, 30));
  const mid = Date.now();
  await new Promise((r) => setTimeout(r, 30));
  for (let i = 0; i < 2; i++) await audit.record(entry());
  t.equal(await audit.trimOlderThan((Date.now() - mid) / 86_400_000), 3, 'the three older rows go');
  t.same(await audit.verify(), { ok: true, rows: 2 });
  await audit.record(entry());
  t.same((await audit.recent(10)).map((r) => r.id), [6, 5, 4], 'ids go on');
  t.same(await audit.verify(), { ok: true, rows: 3 });
  t.equal(await audit.trimOlderThan(1, Date.now() + 2 * 86_400_000), 3, 'everything past retention');
  await audit.record(entry());
  t.same(await audit.verify(), { ok: true, rows: 1 });
});

forEachStore(t, 'two writers at once keep one unbroken chain', async (t, store, url) => {
  // PostgreSQL: two instances (two pools); SQLite, one process by design: two logs on one handle
  const other = store.dialect === 'postgres' ? await openStore(url) : store;
  if (other !== store) t.teardown(() => other.close());
  const a = await AuditLog.open(store);
  const b = await AuditLog.open(other);
  await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).record(entry({ bytes: i }))));
  t.same(await a.verify(), { ok: true, rows: 40 }, 'every row, each chained to the one before');
  t.same((await b.recent(40)).map((r) => r.bytes).sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i), 'none lost');
});

forEachStore(t, 'the admin search filters by patient, clinician, study, peer (case-insensitive, literal) and dates', async (t, store) => {
  const audit = await AuditLog.open(store);
  await audit.record(entry({ actorDn: 'CN=box_b,O=Centre B' }));
  await audit.record(entry({ actorDn: 'CN=boxXb,O=Centre X', patientId: 'OTHER' }));
  const all = async (f: Parameters<AuditLog['rows']>[0]) => { const out = []; for await (const r of audit.rows(f)) out.push(r.id); return out; };
  t.same(await all({ peer: 'BOX_B' }), [1], 'an underscore in the search is a literal underscore');
  t.same(await all({ ins: 'OTHER' }), [2]);
  t.same(await all({ from: '2000-01-01T00:00:00.000Z', to: '2999-01-01T00:00:00.000Z', rpps: '810000000001' }), [1, 2]);
  t.same(await all({ to: '2000-01-01T00:00:00.000Z' }), []);
});

t.test('rows written before the chain existed are chained once at start', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-legacy-')), 'box.db');
  const raw = new Database(file);
  raw.exec('CREATE TABLE schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const chainAt = migrations.findIndex((m) => m.id === '060-audit-chain');
  for (const m of migrations.slice(0, chainAt)) { raw.exec(m.sql); raw.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(m.id, 'x'); }
  raw.prepare(`INSERT INTO audit (at, direction, route, method, status) VALUES ('2026-01-01T00:00:00.000Z', 'peer-in', '/dicom-web/studies', 'GET', 200)`).run();
  raw.close();
  const store = await openStore(`sqlite:${file}`);
  t.teardown(() => store.close());
  const audit = await AuditLog.open(store);
  await audit.record(entry());
  t.same(await audit.verify(), { ok: true, rows: 2 });
});

t.test('requests fold into study accesses within the window', async (t) => {
  const row = (at: string, over: Record<string, unknown> = {}) => ({
    id: 0, at, direction: 'peer-in' as const, actor_dn: 'CN=box-b', actor_rpps: '8100', route: '/dicom-web/studies/:study/series/:series/instances/:instance/frames/:frames',
    method: 'GET', patient_id: 'INS1', study_uid: '1.2.3', series_uid: null, instance_uid: null, kos_uid: '1.9', status: 200, outcome: null, bytes: 10, duration_ms: 1, hash: null, ...over,
  });
  const rows = [
    row('2026-01-01T10:00:00.000Z'), row('2026-01-01T10:05:00.000Z'), row('2026-01-01T10:06:00.000Z', { status: 403, outcome: 'Not covered by the KOS' }),
    row('2026-01-01T10:07:00.000Z', { actor_rpps: '8200' }),
    row('2026-01-01T11:00:00.000Z'),
  ];
  const { items } = await foldAccesses(rows, 30 * 60_000, 100);
  t.equal(items.length, 3);
  t.match(items[2], { firstAt: '2026-01-01T10:00:00.000Z', lastAt: '2026-01-01T10:06:00.000Z', requests: 3, bytes: 30, refused: 1, outcome: 'Not covered by the KOS', kind: 'frames' });
  t.match(items[1], { rpps: '8200', requests: 1 });
  t.match(items[0], { firstAt: '2026-01-01T11:00:00.000Z', requests: 1 }, 'after the window: a new access');
  t.same((await foldAccesses(rows, 30 * 60_000, 2)).truncated, true);
  t.same(['/dicom-web/studies/:study', '/dicom-web/studies/:study/metadata', '/dicom-web/studies', '/contextual-call'].map(accessKind), ['retrieve', 'metadata', 'query', 'other']);
});
