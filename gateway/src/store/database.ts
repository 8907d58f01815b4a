// The box's database behind one typed query builder (Kysely): SQLite (better-sqlite3, the embedded
// default) or PostgreSQL (several instances sharing one database), chosen by `database.url`.
// Opening runs the migrations, so a store is always at the schema this code expects.
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Schema } from './schema.js';
import { migrationProvider } from './migrations/index.js';
import { legacyMigrations } from './legacy-migrations.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Schema>;
  dialect: Dialect;
  close(): Promise<void>;
  /**
   * Transition only (issue 13): the better-sqlite3 handle under `db`, for code not yet converted to
   * Kysely. Shared with Kysely (one connection, no writer contention); absent on PostgreSQL.
   * @deprecated
   */
  sqlite?: Database.Database;
}

/** `sqlite:PATH` (`sqlite::memory:` for a private in-memory store) or `postgres://user[:pw]@host:port/db`. */
export async function openStore(url: string): Promise<Store> {
  const store = url.startsWith('sqlite:') ? openSqlite(url.slice('sqlite:'.length))
    : /^postgres(ql)?:\/\//.test(url) ? openPostgres(url)
    : undefined;
  if (!store) throw new Error(`database.url: must start with sqlite: or postgres:// (got ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//…@'))})`);
  try {
    await migrate(store);
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}

function openSqlite(file: string): Store {
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // patient data and the audit trail: owner only. SQLite gives -wal/-shm the database file's mode.
    closeSync(openSync(file, 'a', 0o600));
    chmodSync(file, 0o600);
  }
  const raw = new Database(file);
  raw.pragma('journal_mode = WAL');
  if (file !== ':memory:') for (const f of [`${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  finishLegacyMigrations(raw);
  // Kysely serialises the connection (one query or transaction at a time): SQLite has one writer anyway
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: raw }) });
  return { db, dialect: 'sqlite', sqlite: raw, close: () => db.destroy() };
}

// int8 (COUNT(*), bigint epoch-ms columns) as a JS number, like SQLite gives them: epoch ms and row
// counts stay far below 2^53
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

function openPostgres(url: string): Store {
  const pool = new pg.Pool({ connectionString: url, max: 10, types });
  // an idle client losing its server (restart, failover) must not crash the process
  pool.on('error', () => {});
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', close: () => db.destroy() };
}

/**
 * A file made by the SQLite-only store (its `schema_migrations` table) is first brought to that
 * migrator's last step; 001-baseline then adopts it as is.
 */
function finishLegacyMigrations(raw: Database.Database): void {
  if (!raw.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get()) return;
  const applied = new Set(raw.prepare('SELECT id FROM schema_migrations').pluck().all() as string[]);
  const record = raw.prepare('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)');
  for (const m of legacyMigrations) {
    if (applied.has(m.id)) continue;
    raw.transaction(() => {
      raw.exec(m.sql);
      record.run(m.id, new Date().toISOString());
    })();
  }
}

async function migrate(store: Store): Promise<void> {
  // numbered by area (core 001–019, consumer 020–039…): a new core migration sorts before applied ones
  const migrator = new Migrator({ db: store.db, provider: migrationProvider(store.dialect), allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`database migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
}
