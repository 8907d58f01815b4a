// A throw-away PostgreSQL cluster for one test file: initdb in a temp dir, postgres on a free
// loopback port (unix socket in the same dir), one database. As root, the cluster runs as `nobody`
// (initdb and postgres refuse root), through setpriv.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface TestPostgres { url: string; port: number; database: string; stop(): Promise<void> }

function pgBin(name: string): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('PostgreSQL not installed (run test/setup-peers.sh)');
  return `/usr/lib/postgresql/${versions[0]}/bin/${name}`;
}

/** Runs argv as the cluster owner (nobody when we are root); setpriv execs, so signals reach postgres itself. */
function asOwner(argv: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', ...argv]] : [argv[0], argv.slice(1)];
}

export async function startPostgres(database = 'drimbox'): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'drimbox-pg-'));
  chmodSync(dir, 0o700);
  if (process.getuid?.() === 0) chownSync(dir, 65534, 65534);
  const data = join(dir, 'data');
  const [cmd, args] = asOwner([pgBin('initdb'), '-D', data, '-U', 'drimbox', '--auth=trust', '-E', 'UTF8', '--no-instructions']);
  const init = spawnSync(cmd, args, { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const [pcmd, pargs] = asOwner([pgBin('postgres'), '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1',
    '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'log_min_messages=warning']);
  const child: ChildProcess = spawn(pcmd, pargs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const ready = () => spawnSync(pgBin('pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'drimbox'], { encoding: 'utf8' }).status === 0;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown of the postmaster 
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => { if (child.exitCode !== null) throw new Error(`postgres exited: ${err}`); return ready(); }, 30_000, 'postgres to accept connections', 100);
    const created = spawnSync(pgBin('createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'drimbox', database], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`createdb failed: ${created.stderr}`);
  } catch (e) { await stop(); throw e; }
  return { url: `postgres://drimbox@127.0.0.1:${port}/${database}`, port, database, stop };
}
