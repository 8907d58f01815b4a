// The production entry point: `drimbox serve --config FILE` starts a box from a config file (with
// environment overrides), refuses a bad key by name, and stops cleanly on SIGTERM.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { readFileSync } from 'node:fs';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { rawTestBoxConfig } from '../helpers/box.js';

t.test('drimbox serve', async (t) => {
  const pki = await testPki();
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  // placeholder ports in the file: the environment overrides below set the real ones
  const config = await rawTestBoxConfig({ pacs: { kind: 'folder', path: join(dir, 'pacs') }, extra: { dataDir: join(dir, 'data'), roles: ['source'] } });
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));

  const bad = spawnSync(process.execPath, ['bin/drimbox.js', 'serve', '--config', file], { env: { ...process.env, DRIMBOX_PEER__PORT: '70000' }, encoding: 'utf8' });
  t.equal(bad.status, 2, 'a bad key stops the start');
  t.match(bad.stderr, /peer\.port: must be a port number/);

  const userPort = await freePort();
  const child = spawn(process.execPath, ['bin/drimbox.js', 'serve', '--config', file], {
    env: { ...process.env, DRIMBOX_USER__PORT: String(userPort), DRIMBOX_PEER__PORT: String(await freePort()), DRIMBOX_HL7__PORT: String(await freePort()) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert) } });
  const deadline = Date.now() + 60_000;
  let health: { status?: string } | undefined;
  while (!health) {
    if (child.exitCode !== null) throw new Error(`drimbox exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`drimbox did not answer: ${out}`);
    try {
      const r = await request(`https://127.0.0.1:${userPort}/healthz`, { dispatcher: agent });
      health = await r.body.json() as { status?: string };
    } catch { await new Promise((r) => setTimeout(r, 200)); }
  }
  // this box has neither PSC nor DMP configured: it answers, and says it cannot do its job
  t.match(health, { status: 'unhealthy', checks: [{ name: 'pacs', state: 'ok' }] }, 'the box answers /healthz');
  const named = Object.fromEntries(((health as { checks: { name: string; state: string }[] }).checks).map((c) => [c.name, c.state]));
  t.match(named, { psc: 'down', dmp: 'down' }, 'naming the unconfigured dependencies');
  child.kill('SIGTERM');
  t.equal(await new Promise((r) => child.once('exit', r)), 0, 'SIGTERM stops it cleanly');
  await agent.close();
});
