// The production entry point: `drimbox serve --config FILE` starts a box from a config file (with
// environment overrides), refuses a bad key by name, and stops cleanly on SIGTERM.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { readFileSync } from 'node:fs';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { rawTestBoxConfig } from '../helpers/box.js';
import Database from 'better-sqlite3';

t.test('drimbox serve', async (t) => {
  const pki = await testPki();
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  // placeholder ports in the file: the environment overrides below set the real ones
  // the file names a DICOMweb PACS: the environment switches it to a folder
  const config = await rawTestBoxConfig({ pacs: { kind: 'dicomweb', url: 'http://127.0.0.1:9/dicom-web' }, extra: { dataDir: join(dir, 'data'), roles: ['source'] } });
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));

  const bad = spawnSync(process.execPath, ['bin/drimbox.js', 'serve', '--config', file], { env: { ...process.env, DRIMBOX_PEER__PORT: '70000' }, encoding: 'utf8' });
  t.equal(bad.status, 2, 'a bad key stops the start');
  t.match(bad.stderr, /peer\.port: must be a port number/);

  const userPort = await freePort();
  const peerPort = await freePort();
  const child = spawn(process.execPath, ['bin/drimbox.js', 'serve', '--config', file], {
    env: {
      ...process.env, DRIMBOX_USER__PORT: String(userPort), DRIMBOX_PEER__PORT: String(peerPort), DRIMBOX_HL7__PORT: String(await freePort()),
      DRIMBOX_PACS__KIND: 'folder', DRIMBOX_PACS__PATH: join(dir, 'pacs'),
      DRIMBOX_LOG_LEVEL: 'debug', // stray: not a key (that is DRIMBOX_LOG__LEVEL)
    },
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
      const r = await request(`https://127.0.0.1:${userPort}/healthz/dependencies`, { dispatcher: agent });
      health = await r.body.json() as { status?: string };
    } catch { await new Promise((r) => setTimeout(r, 200)); }
  }
  // this box has neither PSC nor DMP configured: it answers, and says it cannot do its job
  t.match(health, { status: 'unhealthy', checks: [{ name: 'pacs', state: 'ok' }] }, 'the box answers /healthz');
  const named = Object.fromEntries(((health as { checks: { name: string; state: string }[] }).checks).map((c) => [c.name, c.state]));
  t.match(named, { psc: 'down', dmp: 'down' }, 'naming the unconfigured dependencies');
  t.match(out, /DRIMBOX_LOG_LEVEL names no configuration key: ignored/, 'the stray variable is warned about');
  for (const f of ['drimbox.db', 'drimbox.db-wal', 'drimbox.db-shm']) {
    t.equal(statSync(join(dir, 'data', f)).mode & 0o777, 0o600, `${f} is readable by its owner only`);
  }
  // a few peer requests (answered or refused, each one audited), then the box stops
  const peerAgent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.demoClient.cert), key: readFileSync(pki.demoClient.key) } });
  for (let i = 0; i < 3; i++) {
    const q = await request(`https://127.0.0.1:${peerPort}/dicom-web/studies`, { dispatcher: peerAgent, headers: { accept: 'application/dicom+json' } });
    t.ok(q.statusCode >= 200, `peer request answered ${q.statusCode}`);
    await q.body.dump();
  }
  await peerAgent.close();
  child.kill('SIGTERM');
  t.equal(await new Promise((r) => child.once('exit', r)), 0, 'SIGTERM stops it cleanly');
  await agent.close();

  const verify = () => spawnSync(process.execPath, ['bin/drimbox.js', 'audit', 'verify', '--config', file], { encoding: 'utf8' });
  const good = verify();
  t.equal(good.status, 0, good.stderr);
  t.match(good.stdout, /audit trail intact: 3 rows/);
  const db = new Database(join(dir, 'data', 'drimbox.db'));
  db.prepare('UPDATE audit SET bytes = bytes + 1 WHERE id = 2').run();
  db.close();
  const broken = verify();
  t.equal(broken.status, 1, 'a changed row fails the check');
  t.match(broken.stderr, /audit trail broken at row 2: .*hash mismatch/);
});

/** `drimbox serve` with that config file: exit status and output once it answered /healthz (or exited). */
async function serve(config: Record<string, unknown>, env: Record<string, string> = {}): Promise<{ status: number | null; out: string; healthy: boolean }> {
  const pki = await testPki();
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const userPort = await freePort();
  const child = spawn(process.execPath, ['bin/drimbox.js', 'serve', '--config', file], {
    env: { ...process.env, DRIMBOX_USER__PORT: String(userPort), DRIMBOX_PEER__PORT: String(await freePort()), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert) } });
  try {
    const deadline = Date.now() + 60_000;
    while (child.exitCode === null && Date.now() < deadline) {
      try {
        const r = await request(`https://127.0.0.1:${userPort}/healthz`, { dispatcher: agent });
        await r.body.dump();
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        return { status: child.exitCode, out, healthy: true };
      } catch { await new Promise((r) => setTimeout(r, 200)); }
    }
    return { status: child.exitCode, out, healthy: false };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await agent.close();
  }
}

t.test('a consumer-only box starts without an hl7 section; the source role refuses open listeners', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const consumer = await rawTestBoxConfig({ pacs: { kind: 'folder', path: join(dir, 'pacs') }, extra: { dataDir: join(dir, 'c'), roles: ['consumer'] } });
  delete consumer.hl7;
  const c = await serve(consumer);
  t.ok(c.healthy, `the consumer-only box answers /healthz (${c.out.slice(0, 300)})`);
  t.notMatch(c.out, /hl7/, 'and says nothing about hl7');

  const source = await rawTestBoxConfig({ pacs: { kind: 'folder', path: join(dir, 'pacs') }, extra: { dataDir: join(dir, 's'), roles: ['source'] } });
  const noSenders = await serve({ ...source, hl7: { port: 1 } });
  t.equal(noSenders.status, 2, 'the source role without hl7.allowedSenders does not start');
  t.match(noSenders.out, /hl7\.allowedSenders: list the RIS addresses allowed to send/);

  const iocmNoPort = await serve({ ...source, source: { iocmCallingAets: ['PACS'] } }, { DRIMBOX_HL7__PORT: String(await freePort()) });
  t.equal(iocmNoPort.status, 2, 'IOCM with calling AE titles but no port does not start');
  t.match(iocmNoPort.out, /source\.iocmPort: required when source\.iocmCallingAets is set/);
  t.match(iocmNoPort.out, /source\.iocmAllowedAddresses: list the PACS addresses/);
});
