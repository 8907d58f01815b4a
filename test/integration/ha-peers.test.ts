// The real peers of the multi-instance layout: a throw-away PostgreSQL cluster, and HAProxy in
// front of two boxes passing mutual TLS through to them and routing around a stopped one.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../helpers/postgres.js';

t.test('PostgreSQL: a query round trip on a throw-away cluster', async (t) => {
  const db = await startPostgres();
  t.teardown(() => db.stop());
  t.match(db.url, /^postgres:\/\/drimbox@127\.0\.0\.1:\d+\/drimbox$/);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  t.teardown(() => client.end());
  await client.query('CREATE TABLE outbox (id serial PRIMARY KEY, payload text NOT NULL)');
  await client.query('INSERT INTO outbox (payload) VALUES ($1), ($2)', ['a', 'b']);
  const { rows } = await client.query('SELECT payload FROM outbox ORDER BY id FOR UPDATE SKIP LOCKED');
  t.same(rows.map((r) => r.payload), ['a', 'b'], 'rows written and read back (SKIP LOCKED is available)');
});
