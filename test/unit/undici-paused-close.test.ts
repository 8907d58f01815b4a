// A server that sends a whole answer and closes while the reader holds the body back (what Orthanc
// does with `Connection: close`) must not crash the process (undici#5360, patched at install by
// scripts/patch-undici.mjs). Unpatched, an uncatchable AssertionError kills the process; patched, the
// held body ends in an ordinary error the box handles (an aborted answer, never a crash).
import t from 'tap';
import { createServer } from 'node:net';
import { request } from 'undici';

t.test('a paused body survives the server closing the connection', async (t) => {
  const body = Buffer.alloc(64 * 1024, 0x61);
  const server = createServer((sock) => {
    sock.once('data', () => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      sock.write(body);
      sock.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as { port: number };
  const r = await request(`http://127.0.0.1:${port}/`);
  await new Promise((res) => setTimeout(res, 1000)); // hold the body: the parser pauses, then FIN arrives
  let n = 0;
  const outcome = await (async () => {
    try {
      for await (const c of r.body) n += (c as Buffer).length;
      return 'complete';
    } catch (e) {
      return `error: ${(e as Error).message}`;
    }
  })();
  t.ok(outcome === 'complete' ? n === body.length : /closed|other side/.test(outcome), `the process is alive; the body ${outcome}`);
});
