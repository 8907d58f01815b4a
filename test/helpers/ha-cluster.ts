// The multi-instance layout on one machine: N gateway processes (`drimbox serve`, real child
// processes, so SIGKILL is real) playing both roles for one imaging centre, sharing one database
// (`database.url`: PostgreSQL) and one study-cache folder, behind HAProxy (TCP passthrough on the peer,
// user and MLLP ports). Around them, the rest of the network as the other helpers start it: the
// registry (the cluster enrolled under HAProxy's peer address), the PSC and DMP simulators, and one
// Orthanc as the PACS, reached through a counting relay so tests can count upstream reads.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { rawTestBoxConfig } from './box.js';
import { testPki } from './pki.js';
import { startTestRegistry, enrolApproved } from './registry.js';
import { startDmpBench, type DmpBench } from './publication-env.js';
import { startOrthanc, type Orthanc } from './orthanc.js';
import { startCountingProxy, type CountingProxy } from './counting-proxy.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { startHaproxy, type Haproxy } from './haproxy.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';
import { startPscSimulator, type PscSimulator } from '../../sandbox/psc/index.js';
import type { StartedRegistry } from '../../registry/src/app.js';
import { startOrUnwind, closeAll, type Closers } from './unwind.js';

const PSC_SECRET = 'ha-cluster-psc-secret-0123456789';

export interface ClusterOptions {
  instances: number;
  /** 'postgres' (default): one shared database and cache folder; 'sqlite': each instance its own file and cache (the one-box layout) */
  database?: 'postgres' | 'sqlite';
  /** how an instance's argv is run (the bench wraps it to enter a CPU cgroup first) */
  launch?: (argv: string[], index: number) => [string, string[]];
  /** extra top-level config sections for every instance (merged over the harness's) */
  extra?: Record<string, unknown>;
}

export interface Instance {
  /** gw1, gw2… (HAProxy's server names) */
  name: string;
  index: number;
  ports: { user: number; peer: number; hl7: number };
  configFile: string;
  proc?: ChildProcess;
  /** the instance's direct user URL (not through HAProxy) */
  userUrl: string;
  peerUrl: string;
  /** the last /healthz answer that was not 200 (while starting) */
  lastHealth?: string;
}

export interface Cluster {
  pki: Awaited<ReturnType<typeof testPki>>;
  registry: StartedRegistry;
  psc: PscSimulator;
  dmp: DmpBench;
  orthanc: Orthanc;
  /** the relay between the instances and Orthanc's DICOMweb API: every request it passed */
  pacsRelay: CountingProxy;
  postgres?: TestPostgres;
  haproxy: Haproxy;
  instances: Instance[];
  /** the centre's public addresses (HAProxy's frontends) */
  userUrl: string;
  peerUrl: string;
  hl7Port: number;
  databaseUrl?: string;
  cacheDir: string;
  /** trusts the dev CA, presents no certificate (a browser) */
  userAgent: Agent;
  /** SIGKILL: the process dies at once, mid-request */
  kill(i: number): Promise<void>;
  /** starts a stopped instance again (same config, same ports) */
  start(i: number): Promise<void>;
  /** waits until HAProxy sees exactly these instances up (by index) */
  waitUp(indexes: number[]): Promise<void>;
  close(): Promise<void>;
}

export function startCluster(o: ClusterOptions): Promise<Cluster> {
  return startOrUnwind((closers) => build(o, closers));
}

async function build(o: ClusterOptions, closers: Closers): Promise<Cluster> {
  const pki = await testPki();
  const front = { user: await freePort(), peer: await freePort(), hl7: await freePort() };
  const instancePorts: Instance['ports'][] = [];
  for (let i = 0; i < o.instances; i++) instancePorts.push({ user: await freePort(), peer: await freePort(), hl7: await freePort() });
  // HAProxy first, so that its ports are taken at once (its servers are down until the instances start)
  const haproxy = await startHaproxy({
    caFile: pki.ca.cert,
    serverName: 'localhost',
    frontends: (['peer', 'user', 'hl7'] as const).map((f) => ({
      name: f, port: front[f],
      servers: instancePorts.map((p, i) => ({ name: `gw${i + 1}`, port: p[f], healthPort: p.user })),
    })),
  });
  closers.push(() => haproxy.stop());
  const userUrl = `https://127.0.0.1:${front.user}`;
  const peerUrl = `https://127.0.0.1:${front.peer}`;

  const registry = await startTestRegistry();
  closers.push(() => registry.close());
  // the allow-list names host AND port: the centre is known by its load balancer's address
  await enrolApproved(registry, pki.boxes['box-a'], `127.0.0.1:${front.peer}`, 'Centre box-a');
  // another centre (box-b) retrieving from this one in the tests
  await enrolApproved(registry, pki.boxes['box-b'], 'box-b.localhost', 'Centre box-b');
  const psc = await startPscSimulator({ clients: [{ client_id: 'box-a', client_secret: PSC_SECRET, redirect_uris: [`${userUrl}/auth/callback`] }] });
  closers.push(() => psc.close());
  const dmp = await startDmpBench();
  closers.push(() => dmp.sim.close());
  const orthanc = await startOrthanc({ gdcm: false });
  closers.push(() => orthanc.stop());
  const pacsRelay = await startCountingProxy(orthanc.dicomWebUrl);
  closers.push(() => pacsRelay.close());
  const postgres = (o.database ?? 'postgres') === 'postgres' ? await startPostgres() : undefined;
  if (postgres) closers.push(() => postgres.stop());

  const root = mkdtempSync(join(tmpdir(), 'drimbox-ha-'));
  const cacheDir = join(root, 'shared-cache');
  mkdirSync(cacheDir);
  // what every instance must share to answer any request: the sealing key of PSC tokens at rest, the
  // admin token, the database, the cache folder
  const shared = {
    tokenKey: randomBytes(32).toString('base64'),
    adminToken: randomBytes(24).toString('hex'),
  };
  const instances: Instance[] = [];
  for (let i = 0; i < o.instances; i++) {
    const ports = instancePorts[i];
    const dataDir = join(root, `gw${i + 1}`);
    mkdirSync(dataDir);
    const raw = await rawTestBoxConfig({
      name: 'box-a',
      pacs: { kind: 'dicomweb', url: pacsRelay.url },
      extra: {
        dataDir,
        roles: ['source', 'consumer'],
        allowList: { url: registry.allowListUrl, trustAnchors: [pki.ca.cert] },
        psc: { issuer: psc.issuer, clientId: 'box-a', clientSecret: PSC_SECRET, introspectionCacheMs: 0, tokenKey: shared.tokenKey },
        dmp: dmp.dmpConfig,
        publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 1 },
        admin: { token: shared.adminToken },
        ...(postgres ? { database: { url: postgres.url }, cache: { dir: cacheDir } } : {}),
        ...o.extra,
      },
    }) as Record<string, any>;
    raw.user = { ...raw.user, port: ports.user, publicUrl: userUrl };
    raw.peer = { ...raw.peer, port: ports.peer, publicUrl: peerUrl };
    raw.hl7 = { ...raw.hl7, port: ports.hl7 };
    const configFile = join(dataDir, 'config.json');
    writeFileSync(configFile, JSON.stringify(raw, null, 2));
    instances.push({ name: `gw${i + 1}`, index: i, ports, configFile, userUrl: `https://127.0.0.1:${ports.user}`, peerUrl: `https://127.0.0.1:${ports.peer}` });
  }

  const userAgent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' } });
  closers.push(() => userAgent.close());
  const healthy = async (inst: Instance) => {
    try {
      const r = await request(`${inst.userUrl}/healthz`, { dispatcher: userAgent });
      const body = await r.body.text();
      return r.statusCode === 200 ? true : (inst.lastHealth = body, false);
    } catch { return false; }
  };
  const start = async (i: number) => {
    const inst = instances[i];
    const argv = [process.execPath, '--import', 'tsx', 'gateway/src/main.ts', 'serve', '--config', inst.configFile];
    const [cmd, args] = o.launch ? o.launch(argv, i) : [argv[0], argv.slice(1)];
    const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env } });
    inst.proc = proc;
    let err = '';
    proc.stderr!.on('data', (d) => { err = (err + d).slice(-4000); if (process.env.DRIMBOX_TEST_LOG) process.stderr.write(`[${inst.name}] ${d}`); });
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`${inst.name} exited (${proc.exitCode}): ${err}`);
      return healthy(inst);
    }, 60_000, () => `${inst.name} to answer /healthz 200 (${inst.lastHealth ?? 'no answer'}) ${err}`, 200);
  };
  const stopAll = async () => {
    await Promise.all(instances.map(async (inst) => {
      const p = inst.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const hard = setTimeout(() => p.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(hard);
    }));
  };
  closers.push(stopAll);
  // the first instance alone first: it runs the database migrations the others then find done
  await start(0);
  await Promise.all(instances.slice(1).map((x) => start(x.index)));

  const waitUp = async (indexes: number[]) => {
    const want = indexes.map((i) => instances[i].name).sort().join(',');
    let seen = '';
    await waitFor(async () => {
      const ups = await Promise.all(['peer', 'user', 'hl7'].map((f) => haproxy.upServers(f)));
      seen = ups.map((u) => u.sort().join(',')).join(' | ');
      return ups.every((u) => u.join(',') === want);
    }, 30_000, () => `HAProxy to see ${want} up (sees ${seen})`, 100);
  };
  await waitUp(instances.map((x) => x.index));

  return {
    pki, registry, psc, dmp, orthanc, pacsRelay, postgres, haproxy, instances,
    userUrl, peerUrl, hl7Port: front.hl7, databaseUrl: postgres?.url, cacheDir, userAgent,
    async kill(i) {
      const p = instances[i].proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    },
    start,
    waitUp,
    close: () => closeAll(closers),
  };
}
