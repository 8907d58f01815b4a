import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../gateway/src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
for (const f of ['a.crt', 'a.key', 'ca.crt']) writeFileSync(join(dir, f), 'x');
const good = {
  box: { name: 'box-a', organization: 'Centre A', retrieveLocationUid: '1.2.250.1.999.1.1' },
  dataDir: './data',
  user: { port: 8443, publicUrl: 'https://viewer.example', tls: { cert: 'a.crt', key: 'a.key' } },
  peer: { port: 9443, publicUrl: 'https://box.example:9443', tls: { cert: 'a.crt', key: 'a.key', ca: 'ca.crt' } },
  pacs: { kind: 'dicomweb', url: 'http://127.0.0.1:8042/dicom-web' },
  hl7: { port: 2575, allowedSenders: ['10.0.0.5'] },
  admin: { token: 'x'.repeat(32) },
};
const file = (o: unknown) => {
  const f = join(dir, `c${Math.random()}.json`);
  writeFileSync(f, JSON.stringify(o));
  return f;
};
const problems = (fn: () => unknown): string[] => {
  try { fn(); } catch (e) { if (e instanceof ConfigError) return e.problems; throw e; }
  return [];
};

t.test('a complete file loads with defaults and resolved paths', async (t) => {
  const c = loadConfig(file(good), {});
  t.equal(c.peer.host, '127.0.0.1');
  t.equal(c.dataDir, join(dir, 'data'));
  t.equal(c.peer.tls.ca, join(dir, 'ca.crt'));
  t.same(c.roles, ['source', 'consumer']);
  t.equal(c.pacs.kind, 'dicomweb');
  t.equal(c.dmp, undefined, 'optional sections stay off');
  t.equal(c.cache.ttlHours, 72);
  t.same(c.audit, { retentionDays: 365, accessWindowMinutes: 30 }, 'audit retention and access window defaults');
});

t.test('environment variables override keys', async (t) => {
  const c = loadConfig(file(good), { DRIMBOX_PEER__PORT: '10443', DRIMBOX_PEER__ALLOWED_PEERS: '["CN=b,O=B,C=FR"]', DRIMBOX_LOG__LEVEL: 'debug', DRIMBOX_ADMIN__TOKEN: '123456789012345678901234567890' });
  t.equal(c.peer.port, 10443);
  t.same(c.peer.allowedPeers, ['CN=b,O=B,C=FR']);
  t.equal(c.log.level, 'debug');
  t.equal(c.admin.token, '123456789012345678901234567890');
});

t.test('every bad or missing key is named', async (t) => {
  t.same(problems(() => loadConfig(join(dir, 'nope.json'), {})).length, 1);
  const p = problems(() => loadConfig(file({ ...good, peer: { ...good.peer, port: 70000, publicUrl: 'http://x' }, pacs: { kind: 'ftp' }, extra: 1, admin: {} }), {}));
  t.ok(p.includes('peer.port: must be a port number (1-65535)'), p.join('|'));
  t.ok(p.includes('peer.publicUrl: must use https:'));
  t.ok(p.some((x) => x.startsWith('pacs.kind:')));
  t.ok(p.includes('extra: unknown key'));
  t.ok(p.includes('admin.token: missing'));
  const q = problems(() => loadConfig(file({ ...good, user: { ...good.user, tls: { cert: 'missing.crt', key: 'a.key' } } }), {}));
  t.match(q[0], /^user\.tls\.cert: no such file/);
  const r = problems(() => loadConfig(file({ ...good, pacs: { kind: 'dimse', host: '127.0.0.1', port: 104 } }), {}));
  t.same(r, ['pacs.calledAet: missing']);
  const dmp = problems(() => loadConfig(file({ ...good, dmp: { registryUrl: 'https://dmp' } }), {}));
  t.ok(dmp.includes('dmp.repositoryUrl: missing') && dmp.includes('dmp.finess: missing'), dmp.join('|'));
});

t.test('a file that is not JSON is refused clearly', async (t) => {
  const f = join(dir, 'bad.json');
  writeFileSync(f, '{ nope');
  t.match(problems(() => loadConfig(f, {}))[0], /not valid JSON/);
});

t.test('source listeners are deny by default; a consumer-only box needs no hl7 section', async (t) => {
  const { hl7: _hl7, ...noHl7 } = good;
  t.equal(loadConfig(file({ ...noHl7, roles: ['consumer'] }), {}).hl7, undefined, 'consumer only: no hl7 section needed');
  t.same(problems(() => loadConfig(file(noHl7), {})), ['hl7: missing (the source role receives the RIS reports over MLLP: hl7.port and hl7.allowedSenders)']);
  t.same(problems(() => loadConfig(file({ ...good, hl7: { port: 2575 } }), {})), ['hl7.allowedSenders: list the RIS addresses allowed to send (empty: nobody could)']);
  t.same(problems(() => loadConfig(file({ ...good, hl7: { port: 2575, allowedSenders: ['ris.local'] } }), {})), ['hl7.allowedSenders: "ris.local" is not an IP address']);
  const c = loadConfig(file(good), {});
  t.match(c.hl7, { maxConnections: 8, idleTimeoutSeconds: 30 });
  t.same(c.source.iocmCallingAets, [], 'IOCM off by default');
  t.same(problems(() => loadConfig(file({ ...good, source: { iocmCallingAets: ['PACS'] } }), {})).sort(), [
    'source.iocmAllowedAddresses: list the PACS addresses allowed to send rejection notes (required when source.iocmCallingAets is set)',
    'source.iocmPort: required when source.iocmCallingAets is set (the PACS sends rejection notes to this port)',
  ]);
  t.same(problems(() => loadConfig(file({ ...good, source: { iocmCallingAets: ['PACS'], iocmPort: 11112, iocmAllowedAddresses: ['10.0.0.7'] } }), {})), []);
});

t.test('a stray DRIMBOX_ variable is ignored with a warning, not a stop', async (t) => {
  const warnings: string[] = [];
  const c = loadConfig(file(good), { DRIMBOX_LOG_LEVEL: 'debug', DRIMBOX_PEER__NOPE: '1', DRIMBOX_PEER__PORT: '10443' }, (m) => warnings.push(m));
  t.equal(c.peer.port, 10443, 'known keys still apply');
  t.equal(c.log.level, 'info', 'DRIMBOX_LOG_LEVEL is not DRIMBOX_LOG__LEVEL');
  t.equal(warnings.length, 2, warnings.join('|'));
  t.match(warnings.join('|'), /DRIMBOX_LOG_LEVEL names no configuration key/);
  t.match(warnings.join('|'), /DRIMBOX_PEER__NOPE/);
});

t.test('an override may switch pacs.kind: validation runs after the merge', async (t) => {
  const c = loadConfig(file(good), { DRIMBOX_PACS__KIND: 'folder', DRIMBOX_PACS__PATH: './pacs' }, () => undefined);
  t.same(c.pacs, { kind: 'folder', path: join(dir, 'pacs') }, 'the dicomweb keys of the file are dropped');
  const same = loadConfig(file(good), { DRIMBOX_PACS__KIND: 'dicomweb', DRIMBOX_PACS__TIMEOUT_MS: '500' }, () => undefined);
  t.same(same.pacs, { kind: 'dicomweb', url: 'http://127.0.0.1:8042/dicom-web', timeoutMs: 500 }, 'same kind: the file keys stay');
  t.match(problems(() => loadConfig(file(good), { DRIMBOX_PACS__KIND: 'folder' }, () => undefined)), ['pacs.path: missing']);
});

t.test('database.url: the existing SQLite file by default, a relative sqlite path, PostgreSQL, a bad scheme named', async (t) => {
  t.equal(loadConfig(file(good), {}).database.url, `sqlite:${join(dir, 'data', 'drimbox.db')}`);
  t.equal(loadConfig(file({ ...good, database: { url: 'sqlite:state/box.db' } }), {}).database.url, `sqlite:${join(dir, 'state', 'box.db')}`);
  t.equal(loadConfig(file(good), { DRIMBOX_DATABASE__URL: 'postgres://drimbox@127.0.0.1:5432/drimbox' }).database.url, 'postgres://drimbox@127.0.0.1:5432/drimbox');
  t.match(problems(() => loadConfig(file({ ...good, database: { url: 'mysql://x@127.0.0.1/db' } }), {})), [/^database\.url: must be sqlite:PATH or postgres:/]);
});
