// HAProxy (the Debian package) on loopback in front of several gateway instances. Every frontend is
// TCP passthrough (mode tcp): mutual TLS ends at the box, so each instance still sees the client
// certificate on its peer port; the user port (HTTPS) and the MLLP port are passed through the same
// way. No stickiness: each new connection goes to the next live server (roundrobin). A server is
// checked with GET /healthz over TLS on its own user port, whatever the frontend it serves.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

export interface HaproxyServer {
  name: string;
  /** the port this frontend forwards to on the instance */
  port: number;
  /** the instance's user (HTTPS) port, where /healthz is asked */
  healthPort: number;
}

export interface HaproxyFrontend {
  /** e.g. peer, user, hl7 */
  name: string;
  port: number;
  servers: HaproxyServer[];
}

export interface HaproxyConfigOptions {
  frontends: HaproxyFrontend[];
  /** CA that signed the instances' user certificates: health checks verify it */
  caFile: string;
  /** the name the instances' certificates carry (SNI and verification of the health check) */
  serverName: string;
  /** runtime API socket (show sess, to see which instance holds a connection) */
  statsSocket: string;
  /** health check period in ms */
  checkIntervalMs?: number;
}

/** The haproxy.cfg text for that layout (pure: no I/O). */
export function haproxyConfig(o: HaproxyConfigOptions): string {
  const inter = o.checkIntervalMs ?? 1000;
  const lines = [
    'global',
    `  stats socket ${o.statsSocket} mode 600 level admin`,
    '  log stdout format raw local0 notice',
    '',
    'defaults',
    '  mode tcp',
    '  log global',
    '  timeout connect 2s',
    // long WADO-RS streams and idle viewer connections: the boxes enforce their own timeouts
    '  timeout client 10m',
    '  timeout server 10m',
    // a connect refused by a dead instance (before the checks mark it down) goes to another one
    '  retries 3',
    '  option redispatch 1',
    // /healthz asks the instance's database: give it time on a busy machine. A server marked
    // down keeps its open streams (a slow check is no reason to cut a transfer; a dead one cuts itself)
    '  timeout check 5s',
    `  default-server inter ${inter} fall 3 rise 2`,
    '',
  ];
  for (const f of o.frontends) {
    lines.push(
      `frontend ${f.name}`,
      `  bind 127.0.0.1:${f.port}`,
      `  default_backend ${f.name}_boxes`,
      '',
      `backend ${f.name}_boxes`,
      '  balance roundrobin',
      '  option httpchk',
      '  http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host ' + o.serverName,
      '  http-check expect status 200',
      ...f.servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port} check port ${s.healthPort} check-ssl verify required ca-file ${o.caFile} check-sni ${o.serverName} verifyhost ${o.serverName}`),
      '',
    );
  }
  return lines.join('\n');
}

export interface Haproxy {
  /** frontend name → its loopback port */
  ports: Record<string, number>;
  /** names of the servers holding the frontend's open connections now (runtime API `show sess`) */
  serversOf(frontend: string): Promise<string[]>;
  /** the servers HAProxy sees UP in a frontend's backend */
  upServers(frontend: string): Promise<string[]>;
  /** a runtime API command's answer */
  command(cmd: string): Promise<string>;
  config: string;
  stop(): Promise<void>;
}

export async function startHaproxy(o: Omit<HaproxyConfigOptions, 'statsSocket'>): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'drimbox-haproxy-'));
  const statsSocket = join(dir, 'admin.sock');
  const config = haproxyConfig({ ...o, statsSocket });
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  // -db: foreground, no daemon, so stopping the child stops HAProxy
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const command = (cmd: string) => new Promise<string>((resolve, reject) => {
    const s = connect(statsSocket);
    let answer = '';
    s.on('connect', () => s.write(`${cmd}\n`));
    s.on('data', (d) => { answer += d; });
    s.on('end', () => resolve(answer));
    s.on('error', reject);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGUSR1'); // soft stop: stop listening, let connections close
      const hard = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(hard);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const upServers = async (frontend: string) => {
    // `show servers state` rows: be_id be_name srv_id srv_name srv_addr srv_op_state (2 = running) …
    const rows = (await command(`show servers state ${frontend}_boxes`)).split('\n').filter((l) => /^\d+ /.test(l)).map((l) => l.split(' '));
    return rows.filter((r) => r[5] === '2').map((r) => r[3]);
  };
  try {
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${out}`);
      return command('show info').then((s) => s.includes('Name: HAProxy'), () => false);
    }, 15_000, 'haproxy runtime API', 50);
  } catch (e) { await stop(); throw e; }
  return {
    ports: Object.fromEntries(o.frontends.map((f) => [f.name, f.port])),
    config,
    command,
    upServers,
    async serversOf(frontend) {
      // `show sess` lines: "0x… proto=tcpv4 src=… fe=user be=user_boxes srv=gw1 ts=… …"
      return (await command('show sess')).split('\n')
        .map((l) => l.match(/ fe=(\S+) be=\S+ srv=(\S+)/))
        .filter((m): m is RegExpMatchArray => !!m && m[1] === frontend && m[2] !== '<none>')
        .map((m) => m[2]);
    },
    stop,
  };
}
