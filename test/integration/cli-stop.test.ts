// `drimbox serve` always stops on SIGTERM: when the box cannot close (here a client that began a
// request and never finished it keeps the listener open), it exits after its stop timeout, and a
// second signal makes it exit at once.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { rawTestBoxConfig } from '../helpers/box.js';

async function serve(t: Test): Promise<{ child: ChildProcess; userPort: number; output: () => string }> {
  const pki = await testPki();
  const dir = mkdtempSync(join(tmpdir(), 'cli-stop-'));
  const config = await rawTestBoxConfig({ pacs: { kind: 'folder', path: join(dir, 'pacs') }, extra: { dataDir: join(dir, 'data'), roles: ['source'] } });
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const userPort = await freePort();
  const child = spawn(process.execPath, ['bin/drimbox.js', 'serve', '--config', file], {
    env: { ...process.env, DRIMBOX_USER__PORT: String(userPort), DRIMBOX_PEER__PORT: String(await freePort()), DRIMBOX_HL7__PORT: String(await freePort()) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert) } });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`drimbox exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`drimbox did not answer: ${out}`);
    try {
      const r = await request(`https://127.0.0.1:${userPort}/healthz`, { dispatcher: agent });
      await r.body.dump();
      break;
    } catch { await new Promise((r) => setTimeout(r, 200)); }
  }
  await agent.close();
  return { child, userPort, output: () => out };
}

/** A client that sends half a request and then nothing: the listener cannot close while it waits. */
async function stuckClient(t: Test, port: number): Promise<void> {
  const ca = readFileSync((await testPki()).ca.cert);
  const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', rejectUnauthorized: false });
  await new Promise<void>((r, j) => s.once('secureConnect', () => r()).once('error', j));
  s.write('POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"half":');
  s.on('error', () => undefined);
  t.teardown(() => { s.destroy(); });
}

const exited = (c: ChildProcess) => new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((r) => c.once('exit', (code, signal) => r({ code, signal, at: Date.now() })));

t.test('one SIGTERM: a box that cannot close exits after its stop timeout', async (t) => {
  const { child, userPort, output } = await serve(t);
  await stuckClient(t, userPort);
  const done = exited(child);
  const sent = Date.now();
  child.kill('SIGTERM');
  const timeout = new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000).unref());
  const end = await Promise.race([done, timeout]);
  t.not(end, 'still running', 'the box stopped');
  if (end !== 'still running') {
    t.equal(end.code, 1, 'with a failure status');
    t.ok(end.at - sent < 25_000, `within the stop timeout (${end.at - sent} ms)`);
    t.match(output(), /not closed after \d+ ms, exiting/, 'saying why');
  }
});

t.test('a second signal exits at once', async (t) => {
  const { child, userPort, output } = await serve(t);
  await stuckClient(t, userPort);
  const done = exited(child);
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(child.exitCode, null, 'still closing after the first signal');
  const sent = Date.now();
  child.kill('SIGTERM');
  const end = await done;
  t.equal(end.code, 1, 'exits with a failure status');
  t.ok(end.at - sent < 5_000, `promptly (${end.at - sent} ms)`);
  t.match(output(), /second signal, exiting now/);
});
