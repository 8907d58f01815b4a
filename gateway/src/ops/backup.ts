// `drimbox backup FILE --config CONFIG` and `drimbox restore FILE --config CONFIG [--force]`.
// SQLite: an online backup (SQLite's backup API through better-sqlite3) of the live file while the box
// runs, made a single self-contained file; restore puts it in place of the box's database, keeping the
// one it replaces. PostgreSQL: pg_dump in custom format, pg_restore into the configured database.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { loadConfig, ConfigError } from '../config/load.js';
import type { DrimboxConfig } from '../config/schema.js';
import { databaseTarget, redactedUrl, type DatabaseTarget } from './database-url.js';
import { parseArgs, UsageError } from './args.js';

const BACKUP_USAGE = 'usage: drimbox backup FILE --config CONFIG [--pg-bin DIR]';
const RESTORE_USAGE = 'usage: drimbox restore FILE --config CONFIG [--force] [--pg-bin DIR]';

type Out = (s: string) => void;
const stdout: Out = (s) => process.stdout.write(s + '\n');
const stderr: Out = (s) => process.stderr.write(s + '\n');

/** The command's FILE and the box's database, or an exit status after saying what is wrong. */
function setup(args: string[], usage: string, err: Out, flags: string[] = []): { file: string; target: DatabaseTarget; config: DrimboxConfig; pgBin?: string; force: boolean } | number {
  let parsed;
  try {
    parsed = parseArgs(args, ['--config', '--pg-bin'], flags);
  } catch (e) {
    if (e instanceof UsageError) { err(`drimbox: ${e.message}\n${usage}`); return 2; }
    throw e;
  }
  const config = parsed.options['--config'];
  if (parsed.positional.length !== 1 || !config) { err(usage); return 2; }
  try {
    const cfg = loadConfig(config);
    const target = databaseTarget(cfg.database.url);
    return { file: parsed.positional[0], target, config: cfg, pgBin: parsed.options['--pg-bin'], force: parsed.flags.has('--force') };
  } catch (e) {
    err(`drimbox: ${(e as Error).message}`);
    return e instanceof ConfigError ? 2 : 1;
  }
}

export async function backupCommand(args: string[], out: Out = stdout, err: Out = stderr): Promise<number> {
  const s = setup(args, BACKUP_USAGE, err);
  if (typeof s === 'number') return s;
  if (existsSync(s.file)) { err(`drimbox: ${s.file} exists: a backup never overwrites another one`); return 1; }
  mkdirSync(dirname(s.file), { recursive: true });
  const partial = `${s.file}.partial`;
  rmSync(partial, { force: true });
  try {
    if (s.target.dialect === 'sqlite') await backupSqlite(s.target.path, partial);
    else runPg(s.pgBin, 'pg_dump', ['--format=custom', '--compress=6', `--file=${partial}`, `--dbname=${s.target.url}`]);
    chmodSync(partial, 0o600); // patient data and the audit trail: owner only
    renameSync(partial, s.file);
  } catch (e) {
    rmSync(partial, { force: true });
    err(`drimbox: backup failed: ${(e as Error).message}`);
    return 1;
  }
  const from = s.target.dialect === 'sqlite' ? s.target.path : redactedUrl(s.target.url);
  out(`backup of ${from} written to ${s.file} (${statSync(s.file).size} bytes, ${s.target.dialect === 'sqlite' ? 'SQLite database' : 'pg_dump custom format'})`);
  return 0;
}

export async function restoreCommand(args: string[], out: Out = stdout, err: Out = stderr): Promise<number> {
  const s = setup(args, RESTORE_USAGE, err, ['--force']);
  if (typeof s === 'number') return s;
  if (!existsSync(s.file)) { err(`drimbox: ${s.file}: no such backup`); return 1; }
  try {
    if (s.target.dialect === 'sqlite') {
      // a running box keeps writing to the file it has open: the restored one would be ignored, then lost
      if (await listening(s.config.user.host, s.config.user.port)) throw new Error(`the box is running (its user port ${s.config.user.host}:${s.config.user.port} is taken): stop it first`);
      const kept = restoreSqlite(s.file, s.target.path, s.force);
      out(`${s.file} restored to ${s.target.path}${kept ? ` (the database it replaces is kept as ${kept})` : ''}`);
    } else {
      if (!s.force && !(await postgresIsEmpty(s.target.url))) throw new Error(`${redactedUrl(s.target.url)} already holds tables: stop every instance and pass --force to replace them`);
      runPg(s.pgBin, 'pg_restore', ['--single-transaction', '--no-owner', '--no-privileges', ...(s.force ? ['--clean', '--if-exists'] : []), `--dbname=${s.target.url}`, s.file]);
      out(`${s.file} restored to ${redactedUrl(s.target.url)}`);
    }
    return 0;
  } catch (e) {
    err(`drimbox: restore failed: ${(e as Error).message}`);
    return 1;
  }
}

async function backupSqlite(live: string, dest: string): Promise<void> {
  if (!existsSync(live)) throw new Error(`${live}: no database (has this box ever started?)`);
  closeSync(openSync(dest, 'wx', 0o600)); // created owner-only before SQLite writes into it
  const src = new Database(live, { readonly: true, fileMustExist: true });
  try {
    src.pragma('busy_timeout = 5000');
    await src.backup(dest); // page by page; restarts by itself when the box writes meanwhile
  } finally {
    src.close();
  }
  // one self-contained file (no -wal beside it), checked before it is called a backup
  const copy = new Database(dest);
  try {
    copy.pragma('journal_mode = DELETE');
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`the copy fails SQLite's quick_check: ${check}`);
  } finally {
    copy.close();
  }
}

/** Puts `backup` in place of `db`; returns where the replaced database went (undefined: there was none). */
function restoreSqlite(backup: string, db: string, force: boolean): string | undefined {
  const probe = new Database(backup, { readonly: true, fileMustExist: true });
  try {
    if (probe.pragma('quick_check', { simple: true }) !== 'ok') throw new Error(`${backup} fails SQLite's quick_check`);
    const tables = probe.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('schema_migrations', 'kysely_migration')").all();
    if (tables.length === 0) throw new Error(`${backup} is not a DRIMbox database (no migration table)`);
  } catch (e) {
    throw new Error((e as Error).message.startsWith(backup) ? (e as Error).message : `${backup}: ${(e as Error).message}`);
  } finally {
    probe.close();
  }
  let kept: string | undefined;
  if (existsSync(db) && statSync(db).size > 0) {
    if (!force) throw new Error(`${db} exists: stop the box and pass --force to replace it (it is kept beside it)`);
    kept = `${db}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    // the -wal holds committed rows not yet in the main file: it moves with it, never stays behind
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(db + suffix)) renameSync(db + suffix, kept + suffix);
  }
  for (const suffix of ['-wal', '-shm']) rmSync(db + suffix, { force: true });
  mkdirSync(dirname(db), { recursive: true, mode: 0o700 });
  const partial = `${db}.restoring`;
  copyFileSync(backup, partial);
  chmodSync(partial, 0o600);
  renameSync(partial, db);
  return kept;
}

/** Whether something already listens on host:port (only "address in use" counts: a port we may not bind proves nothing). */
function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EADDRINUSE'));
    srv.listen(port, host, () => srv.close(() => resolve(false)));
  });
}

async function postgresIsEmpty(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const r = await client.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'");
    return r.rows[0].n === 0;
  } finally {
    await client.end();
  }
}

/** Runs a PostgreSQL client tool (from --pg-bin, else PATH); its stderr is the error. */
function runPg(binDir: string | undefined, tool: 'pg_dump' | 'pg_restore', args: string[]): void {
  const cmd = binDir ? join(binDir, tool) : tool;
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: process.env });
  if (r.error) throw new Error(`${cmd}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found (install postgresql-client of the server\'s version, or pass --pg-bin DIR)' : r.error.message}`);
  if (r.status !== 0) throw new Error(`${tool} exited ${r.status}: ${r.stderr.trim()}`);
}
