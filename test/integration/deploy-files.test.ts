// The deployment files that cannot run here (no Docker, no systemd as PID 1): compose.yaml parsed and
// checked against the HAProxy sample it mounts, .dockerignore and the Dockerfile read, the HAProxy
// sample validated by haproxy -c, the systemd unit by systemd-analyze verify.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { testPki } from '../helpers/pki.js';

type Service = {
  image?: string; build?: unknown; environment?: Record<string, string>; env_file?: string[]; volumes?: string[];
  ports?: string[]; healthcheck?: { test: string[] }; depends_on?: Record<string, { condition: string }> | string[];
};
const compose = parse(readFileSync('compose.yaml', 'utf8'), { merge: true }) as { services: Record<string, Service> };
const haproxyCfg = readFileSync('deploy/haproxy.cfg', 'utf8');

t.test('compose.yaml: PostgreSQL, two instances, HAProxy with the sample config', async (t) => {
  const s = compose.services;
  t.same(Object.keys(s).sort(), ['drimbox-1', 'drimbox-2', 'haproxy', 'postgres']);
  t.match(s.postgres.image, /^postgres:\d+$/, 'PostgreSQL pinned by major');
  t.ok(s.postgres.healthcheck?.test.includes('pg_isready'), 'PostgreSQL has a healthcheck');
  for (const name of ['drimbox-1', 'drimbox-2']) {
    const box = s[name];
    t.equal(box.build, '.', `${name} is built from the Dockerfile`);
    t.match(box.environment?.DRIMBOX_DATABASE__URL, /^postgres:\/\/drimbox@postgres:5432\/drimbox$/, `${name} uses the postgres service, no password in the URL`);
    t.same(box.depends_on, { postgres: { condition: 'service_healthy' } }, `${name} waits for PostgreSQL`);
    t.same(box.healthcheck?.test.slice(1, 4), ['node', 'bin/drimbox.js', 'healthcheck'], `${name} is probed on its /healthz`);
    t.ok(box.volumes?.includes('./deploy/config:/etc/drimbox:ro'), `${name} reads its config and certificates read-only`);
    t.equal(box.environment?.DRIMBOX_CACHE__DIR, '/var/lib/drimbox-cache', `${name} keeps the study cache in the shared folder`);
    t.ok(box.volumes?.includes('drimbox-cache:/var/lib/drimbox-cache'), `${name} mounts the shared cache volume`);
    t.ok(box.volumes?.includes(`${name}-data:/var/lib/drimbox`), `${name} has a dataDir of its own`);
  }
  t.ok(s.haproxy.volumes?.includes('./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro'), 'HAProxy runs the documented sample');
  // every backend server of the sample is an instance of this file, every frontend port is published
  const servers = [...haproxyCfg.matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)].map((m) => m[2]);
  t.ok(servers.length >= 8, 'four backends of two servers');
  t.same([...new Set(servers)].sort(), ['drimbox-1', 'drimbox-2'], 'HAProxy sends to the two instances');
  const binds = [...haproxyCfg.matchAll(/^\s*bind :(\d+)/gm)].map((m) => m[1]).sort();
  t.same(s.haproxy.ports?.map((p) => p.split(':')[1].split(/\s/)[0]).sort(), binds, 'every HAProxy frontend is published');
});

t.test('compose.yaml holds no secret: they come from env files that are not committed', async (t) => {
  const gitignore = readFileSync('.gitignore', 'utf8').split('\n');
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const [key, value] of Object.entries(svc.environment ?? {})) {
      t.notMatch(key, /PASSWORD|SECRET|TOKEN|_KEY$/, `${name}: ${key} is not set inline`);
      t.notMatch(String(value), /:\/\/[^/@:]+:[^/@]+@/, `${name}: ${key} carries no password`);
    }
    for (const f of svc.env_file ?? []) t.match(f, /^deploy\/secrets\//, `${name}: ${f} is under deploy/secrets/`);
  }
  t.ok(gitignore.includes('deploy/secrets/'), 'deploy/secrets/ is git-ignored');
});

t.test('.dockerignore and the Dockerfile', async (t) => {
  const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim());
  for (const entry of ['.git', 'node_modules', '**/node_modules', 'sandbox/.run', 'certs/out', '**/*.key', '**/*.pem', 'deploy/secrets']) {
    t.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
  }
  const docker = readFileSync('Dockerfile', 'utf8');
  const base = /^ARG NODE_IMAGE=node:(\d+)-[a-z]+-slim$/m.exec(docker);
  t.ok(base && Number(base[1]) % 2 === 0, `a Node LTS line pinned by major (${base?.[0]})`);
  t.match(docker, /npm ci --omit=dev/, 'the runtime gets production dependencies only');
  t.match(docker, /^USER drimbox$/m, 'the box does not run as root');
  t.match(docker, /^EXPOSE \$\{USER_PORT\} \$\{PEER_PORT\} \$\{HL7_PORT\} \$\{IOCM_PORT\}$/m, 'every listener is exposed');
  for (const p of ['USER_PORT=8443', 'PEER_PORT=9443', 'HL7_PORT=2575', 'IOCM_PORT=11112']) t.match(docker, new RegExp(`^ARG ${p}$`, 'm'));
  t.match(docker, /HEALTHCHECK[^\n]*\\\n\s+CMD \["node", "bin\/drimbox.js", "healthcheck", "--config", "\/etc\/drimbox\/config.json"\]/, 'the healthcheck reads the port from the config');
});

t.test('deploy/haproxy.cfg is a valid HAProxy configuration', async (t) => {
  const pki = await testPki();
  const dir = mkdtempSync(join(tmpdir(), 'haproxy-sample-'));
  copyFileSync(pki.ca.cert, join(dir, 'user-ca.pem'));
  writeFileSync(join(dir, 'haproxy.cfg'), haproxyCfg.replaceAll('/usr/local/etc/haproxy/', `${dir}/`));
  const r = spawnSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.match(haproxyCfg, /^\s*mode tcp$/m, 'TCP passthrough: mutual TLS ends at the box');
  t.match(haproxyCfg, /http-check send meth GET uri \/healthz/, 'health checks on /healthz');
  t.match(haproxyCfg, /check-ssl verify required/, 'over verified TLS');
});

t.test('deploy/drimbox.service: a hardened systemd unit', async (t) => {
  const r = spawnSync('systemd-analyze', ['verify', 'deploy/drimbox.service'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout + r.stderr);
  const unit = readFileSync('deploy/drimbox.service', 'utf8');
  for (const line of ['User=drimbox', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/drimbox', 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'UMask=0077',
    'ExecStart=/usr/bin/node /opt/drimbox/bin/drimbox.js serve --config /etc/drimbox/config.json']) {
    t.match(unit, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'), line);
  }
});
