// The real peers of the multi-instance layout: a throw-away PostgreSQL cluster, and HAProxy in
// front of two boxes passing mutual TLS through to them and routing around a stopped one.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { request } from 'undici';
import { startPostgres } from '../helpers/postgres.js';
import { startHaproxy } from '../helpers/haproxy.js';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import type { RolePlugin } from '../../gateway/src/box.js';
import { peerApi } from '../../gateway/src/source/peer-api.js';

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

t.test('HAProxy: TCP passthrough on the peer port (each box sees the client certificate), /healthz checks, a stopped box routed around', async (t) => {
  const pki = await testPki();
  // the peer API with a scope guard granting everything: this test is about who is calling, not what
  // a KOS grants (a box serves peers only through its source role's KOS guard)
  const peerApiForAll: RolePlugin = async (ctx) => {
    ctx.access.useScope(() => undefined);
    await ctx.peer.register(peerApi, { prefix: '/dicom-web', pacs: ctx.pacs, access: ctx.access, audit: ctx.audit });
  };
  const boxes = await Promise.all([1, 2].map(() => startTestBox({
    pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'ha-pacs-')) },
    allowedPeers: [pki.demoClient.subjectDn],
    boxOptions: { plugins: [peerApiForAll] },
  })));
  const closed = new Set<number>();
  t.teardown(async () => { for (const [i, b] of boxes.entries()) if (!closed.has(i)) await b.close(); });
  const port = (u: string) => Number(new URL(u).port);
  const haproxy = await startHaproxy({
    caFile: pki.ca.cert, serverName: 'localhost',
    frontends: [{ name: 'peer', port: await freePort(), servers: boxes.map((b, i) => ({ name: `gw${i + 1}`, port: port(b.peerUrl), healthPort: port(b.userUrl) })) }],
  });
  t.teardown(() => haproxy.stop());
  await waitFor(async () => (await haproxy.upServers('peer')).length === 2, 15_000, 'both boxes up at HAProxy', 100);
  const url = `https://127.0.0.1:${haproxy.ports.peer}/dicom-web/studies`;
  const ask = async (identity?: { cert: string; key: string }) => {
    const agent = await mtlsAgent(identity);
    try {
      const r = await request(url, { dispatcher: agent, headers: { accept: 'application/dicom+json' } });
      return { status: r.statusCode, body: await r.body.json() as { title?: string } };
    } finally { await agent.close(); }
  };

  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await ask(pki.demoClient)).status); // new connections: both boxes answer
  t.same(statuses, [200, 200, 200, 200], 'a listed client certificate is accepted behind HAProxy');
  const unlisted = await ask(pki.boxes['box-c']);
  t.same([unlisted.status, unlisted.body.title], [403, 'Peer not allowed'], 'a trusted but unlisted certificate is refused by the box itself');
  const none = await ask();
  t.equal(none.status, 401, 'no certificate: the box asks for one (TLS is not ended at HAProxy)');

  await boxes[0].close();
  closed.add(0);
  await waitFor(async () => (await haproxy.upServers('peer')).join() === 'gw2', 15_000, 'HAProxy to mark the stopped box down', 100);
  const after: number[] = [];
  for (let i = 0; i < 3; i++) after.push((await ask(pki.demoClient)).status);
  t.same(after, [200, 200, 200], 'every request answered by the remaining box');
});
