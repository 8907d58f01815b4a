// The registry's own SQLite database (separate from any box): better-sqlite3, WAL, ordered migrations.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type RegistryDb = Database.Database;

const migrations: { id: string; sql: string }[] = [
  {
    id: '030-registry-enrolments',
    sql: `
      CREATE TABLE enrolments (
        id INTEGER PRIMARY KEY,           -- the list's Identifiant
        dn TEXT NOT NULL,                 -- subject DN of the box certificate (RFC 2253), from mTLS
        cert_sha256 TEXT NOT NULL,        -- fingerprint of the certificate that enrolled
        box_host TEXT NOT NULL,           -- db
        viewer_host TEXT,                 -- vi
        operator_name TEXT NOT NULL,      -- Denomination
        support_contact TEXT,             -- SupportContact
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'revoked')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,         -- DateMAJ
        decided_by TEXT
      );
      CREATE INDEX enrolments_status ON enrolments(status);
    `,
  },
];

export function openRegistryDb(file: string): RegistryDb {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const applied = new Set(db.prepare('SELECT id FROM schema_migrations').pluck().all() as string[]);
  for (const m of migrations) {
    if (applied.has(m.id)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)').run(m.id, new Date().toISOString());
    })();
  }
  return db;
}
