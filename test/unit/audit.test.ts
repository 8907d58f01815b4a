// The audit trail's hash chain (an edited, emptied or deleted row is named), retention that keeps the
// chain verifiable from its anchor, rows written before the chain, and the folding into accesses.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDb } from '../../gateway/src/store/db.js';
import { AuditLog, type AuditEntry } from '../../gateway/src/store/audit.js';
import { foldAccesses, accessKind } from '../../gateway/src/store/audit-access.js';
import { legacyMigrations as migrations } from '../../gateway/src/store/legacy-migrations.js';

const entry = (over: Partial<AuditEntry> = {}): AuditEntry => ({
  direction: 'peer-in', actorDn: 'CN=box-b', actorRpps: '810000000001', route: '/dicom-web/studies/:study/series/:series/instances/:instance/frames/:frames',
  method: 'GET', patientId: '279035121518989', studyUid: '1.2.3', kosUid: '1.2.9', status: 200, bytes: 1000, durationMs: 1.25, ...over,
});

t.test('an edited, emptied or deleted row breaks the chain at that row', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'box.db');
  const db = openDb(file);
  const audit = new AuditLog(db);
  for (let i = 0; i < 5; i++) audit.record(entry({ bytes: i }));
  t.same(audit.verify(), { ok: true, rows: 5 });
  db.prepare('UPDATE audit SET actor_rpps = ? WHERE id = 3').run('810000000099');
  t.match(audit.verify(), { ok: false, brokenAt: 3, rows: 2, reason: /hash mismatch/ });
  db.prepare('UPDATE audit SET actor_rpps = ? WHERE id = 3').run('810000000001');
  t.same(audit.verify(), { ok: true, rows: 5 }, 'restored');
  db.prepare('UPDATE audit SET hash = NULL WHERE id = 4').run();
  t.match(new AuditLog(db).verify(), { ok: false, brokenAt: 4 }, 'an emptied hash is not re-computed at the next start');
  db.close();

  const db2 = openDb(file);
  const a2 = new AuditLog(db2);
  db2.prepare('DELETE FROM audit WHERE id = 2').run();
  t.match(a2.verify(), { ok: false, brokenAt: 3, reason: 'row 2 missing before it' });
  db2.close();
});

t.test('retention deletes old rows and the chain verifies from its anchor', async (t) => {
  const db = openDb(':memory:');
  const audit = new AuditLog(db);
  for (let i = 0; i < 3; i++) audit.record(entry());
  await new Promise((r) => setTimeout(r, 30));
  const mid = Date.now();
  await new Promise((r) => setTimeout(r, 30));
  for (let i = 0; i < 2; i++) audit.record(entry());
  t.equal(audit.trimOlderThan((Date.now() - mid) / 86_400_000), 3, 'the three older rows go');
  t.same(audit.verify(), { ok: true, rows: 2 });
  audit.record(entry());
  t.same(audit.recent(10).map((r) => r.id), [6, 5, 4], 'ids go on');
  t.same(audit.verify(), { ok: true, rows: 3 });
  t.equal(audit.trimOlderThan(1, Date.now() + 2 * 86_400_000), 3, 'everything past retention');
  audit.record(entry());
  t.same(audit.verify(), { ok: true, rows: 1 });
});

t.test('rows written before the chain existed are chained once at start', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-legacy-')), 'box.db');
  const raw = new Database(file);
  raw.exec('CREATE TABLE schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const chainAt = migrations.findIndex((m) => m.id === '060-audit-chain');
  for (const m of migrations.slice(0, chainAt)) { raw.exec(m.sql); raw.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(m.id, 'x'); }
  raw.prepare(`INSERT INTO audit (at, direction, route, method, status) VALUES ('2026-01-01T00:00:00.000Z', 'peer-in', '/dicom-web/studies', 'GET', 200)`).run();
  raw.close();
  const db = openDb(file);
  const audit = new AuditLog(db);
  audit.record(entry());
  t.same(audit.verify(), { ok: true, rows: 2 });
  db.close();
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
  const { items } = foldAccesses(rows, 30 * 60_000, 100);
  t.equal(items.length, 3);
  t.match(items[2], { firstAt: '2026-01-01T10:00:00.000Z', lastAt: '2026-01-01T10:06:00.000Z', requests: 3, bytes: 30, refused: 1, outcome: 'Not covered by the KOS', kind: 'frames' });
  t.match(items[1], { rpps: '8200', requests: 1 });
  t.match(items[0], { firstAt: '2026-01-01T11:00:00.000Z', requests: 1 }, 'after the window: a new access');
  t.same(foldAccesses(rows, 30 * 60_000, 2).truncated, true);
  t.same(['/dicom-web/studies/:study', '/dicom-web/studies/:study/metadata', '/dicom-web/studies', '/contextual-call'].map(accessKind), ['retrieve', 'metadata', 'query', 'other']);
});
