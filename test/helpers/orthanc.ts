// A private, throw-away Orthanc PACS on loopback for one test file: free ports, temp storage,
// DICOMweb plugin, sockets forced onto 127.0.0.1 by an LD_PRELOAD shim (Orthanc 1.10 has no
// bind-address option). Fails loudly when Orthanc is missing: tests never silently skip.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

const here = dirname(fileURLToPath(import.meta.url));
const ORTHANC_BIN = ['/usr/sbin/Orthanc', '/usr/bin/Orthanc'].find(existsSync);
const DICOMWEB_SO = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';
const GDCM_SO = '/usr/share/orthanc/plugins/libOrthancGdcm.so';

export interface OrthancOptions {
  aet?: string;
  /** peers Orthanc may C-MOVE/C-STORE to */
  modalities?: Record<string, { aet: string; host: string; port: number }>;
  gdcm?: boolean;
  /** Orthanc's in-memory storage cache, in MB (default Orthanc's 128): 0 makes every read hit the disk,
   * so a test can damage a stored file */
  storageCacheMb?: number;
  /** HTTP basic credentials Orthanc requires (none: open on loopback); the helper itself uses the first */
  users?: Record<string, string>;
  /** false: Orthanc reads every file from disk (no in-memory storage cache), so disk faults show */
  storageCache?: boolean;
}

export interface Orthanc {
  url: string;              // http://127.0.0.1:PORT
  dicomWebUrl: string;      // http://127.0.0.1:PORT/dicom-web
  aet: string;
  dicomPort: number;
  httpPort: number;
  workdir: string;
  /** upload Part 10 files through the REST API; returns Orthanc's answers */
  upload(files: string[] | Buffer[]): Promise<{ ID: string; ParentStudy: string; Status: string }[]>;
  stop(): Promise<void>;
  /** SIGKILL, to simulate a PACS dying mid-stream */
  kill(): void;
  proc: ChildProcess;
}

function shim(): string | undefined {
  const out = join(tmpdir(), 'drimbox-orthanc-preload.so');
  const src = join(here, 'orthanc-preload.c');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  try {
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', out + '.tmp', src, '-ldl', '-lpthread']);
    execFileSync('mv', [out + '.tmp', out]);
    return out;
  } catch {
    return undefined;
  }
}

export async function startOrthanc(opts: OrthancOptions = {}): Promise<Orthanc> {
  if (!ORTHANC_BIN || !existsSync(DICOMWEB_SO)) {
    throw new Error('Orthanc (Debian orthanc + orthanc-dicomweb) is not installed: run test/setup-peers.sh');
  }
  const preload = shim();
  if (!preload) throw new Error('could not build the Orthanc loopback shim (gcc missing?)');
  const httpPort = await freePort();
  let dicomPort = await freePort();
  while (dicomPort === httpPort) dicomPort = await freePort();
  const aet = opts.aet ?? 'ORTHANC';
  const workdir = mkdtempSync(join(tmpdir(), 'orthanc-test-'));
  mkdirSync(join(workdir, 'db'));
  const plugins = [DICOMWEB_SO];
  if (opts.gdcm !== false && existsSync(GDCM_SO)) plugins.push(GDCM_SO);
  const modalities: Record<string, unknown> = {};
  for (const [name, m] of Object.entries(opts.modalities ?? {})) modalities[name] = { AET: m.aet, Host: m.host, Port: m.port };
  const config = {
    Name: `test-orthanc-${httpPort}`,
    StorageDirectory: join(workdir, 'db'),
    IndexDirectory: join(workdir, 'db'),
    StorageCompression: false,
    ...(opts.storageCache === false ? { MaximumStorageCacheSize: 0 } : {}),
    Plugins: plugins,
    HttpServerEnabled: true,
    HttpPort: httpPort,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: !!opts.users,
    RegisteredUsers: opts.users ?? {},
    SslEnabled: false,
    WebDavEnabled: false,
    ExecuteLuaEnabled: false,
    SaveJobs: false,
    DicomServerEnabled: true,
    DicomAet: aet,
    DicomPort: dicomPort,
    DicomCheckCalledAet: false,
    DicomCheckModalityHost: true,
    DicomAlwaysAllowEcho: true,
    DicomAlwaysAllowStore: true,
    DicomAlwaysAllowFind: true,
    DicomAlwaysAllowGet: true,
    DicomAlwaysAllowMove: true,
    UnknownSopClassAccepted: true,
    DicomModalities: modalities,
    StableAge: 2,
    ...(opts.storageCacheMb !== undefined ? { MaximumStorageCacheSize: opts.storageCacheMb } : {}),
    HttpThreadsCount: 50,
    DicomWeb: {
      Enable: true, Root: '/dicom-web/', EnableWado: true, WadoRoot: '/wado', Ssl: false,
      StudiesMetadata: 'Full', SeriesMetadata: 'Full',
    },
    Gdcm: {
      Enable: true,
      RestrictTransferSyntaxes: ['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.4.92', '1.2.840.10008.1.2.4.93'],
      Throttling: 2,
    },
  };
  const cfgFile = join(workdir, 'orthanc.json');
  writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  const proc = spawn(ORTHANC_BIN, [cfgFile], {
    env: { ...process.env, LD_PRELOAD: preload },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  proc.stderr!.on('data', (d) => { log = (log + d).slice(-8000); });
  const url = `http://127.0.0.1:${httpPort}`;
  const [user] = Object.entries(opts.users ?? {});
  const auth: Record<string, string> = user ? { authorization: `Basic ${Buffer.from(`${user[0]}:${user[1]}`).toString('base64')}` } : {};
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`Orthanc exited at start: ${log}`);
    try {
      const r = await fetch(`${url}/dicom-web/studies`, { headers: auth });
      if (r.ok || r.status === 204) { await r.arrayBuffer(); break; }
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`Orthanc did not start: ${log}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(workdir, { recursive: true, force: true });
  };
  return {
    url, dicomWebUrl: `${url}/dicom-web`, aet, dicomPort, httpPort, workdir, proc,
    async upload(files) {
      const out = [];
      for (const f of files) {
        const body = typeof f === 'string' ? readFileSync(f) : f;
        const r = await fetch(`${url}/instances`, { method: "POST", body: new Uint8Array(body), headers: auth });
        if (!r.ok) throw new Error(`Orthanc upload failed: ${r.status} ${await r.text()}`);
        out.push(await r.json());
      }
      return out;
    },
    stop,
    kill() { proc.kill('SIGKILL'); },
  };
}
