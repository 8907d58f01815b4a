// Runs a repository contract test on both backends: a fresh SQLite file and a fresh PostgreSQL
// database (one throw-away cluster per test file, one database per case). PostgreSQL missing on
// the machine fails the test: it is never skipped.
import tap, { type Test } from 'tap';
import pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../gateway/src/store/database.js';
import { startPostgres, type TestPostgres } from './postgres.js';

let cluster: Promise<TestPostgres> | undefined;
let databases = 0;

/** This file's PostgreSQL cluster (started on first use, stopped when the file's tests end). */
export function testPostgres(): Promise<TestPostgres> {
  if (!cluster) {
    const started = startPostgres();
    cluster = started;
    // the root test's teardown runs once every test of the file ended
    tap.teardown(async () => { await (await started).stop(); });
  }
  return cluster;
}

/** A fresh, empty database on this file's cluster; its URL. */
export async function newPostgresDatabase(): Promise<string> {
  const cluster = await testPostgres();
  const name = `case_${++databases}`;
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return cluster.url.replace(/\/[^/]*$/, `/${name}`);
}

/** A fresh store of the given backend, closed at the end of `t`. */
export async function freshStore(t: Test, dialect: 'sqlite' | 'postgres'): Promise<{ store: Store; url: string }> {
  let url: string;
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'drimbox-store-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    url = `sqlite:${join(dir, 'drimbox.db')}`;
  } else {
    url = await newPostgresDatabase();
  }
  const store = await openStore(url);
  t.teardown(() => store.close());
  return { store, url };
}

/** Runs `body` as two subtests, "NAME (sqlite)" and "NAME (postgres)", each on a fresh store. */
export function forEachStore(t: Test, name: string, body: (t: Test, store: Store, url: string) => Promise<void>): void {
  for (const dialect of ['sqlite', 'postgres'] as const) {
    t.test(`${name} (${dialect})`, async (t) => {
      const { store, url } = await freshStore(t, dialect);
      await body(t, store, url);
    });
  }
}
