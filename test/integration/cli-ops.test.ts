// The operations commands: `drimbox --version`, `drimbox backup`/`restore` of a running box (SQLite),
// and `drimbox doctor` against the real sandbox peers (Orthanc, the DMP and PSC simulators, the registry).
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { request } from 'undici';
import { rawTestBoxConfig, startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { startDmpBench, sendHl7, settledJob, type DmpBench } from '../helpers/publication-env.js';
import { startTestRegistry, enrolApproved } from '../helpers/registry.js';
import { startPscSimulator, type PscSimulator } from '../../sandbox/psc/index.js';
import type { StartedRegistry } from '../../registry/src/app.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createSourceRole } from '../../gateway/src/source/role.js';
import type { Box } from '../../gateway/src/box.js';

/** Runs bin/drimbox.js without blocking this process (the peers it reaches run in it). */
function drimbox(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/drimbox.js', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

function writeConfig(config: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'ops-cfg-')), 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

t.test('drimbox --version prints the version of package.json', async (t) => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const r = await drimbox(['--version']);
  t.equal(r.status, 0);
  t.equal(r.stdout.trim(), `drimbox ${version}`);
});

t.test('backup of a running box (SQLite) and restore into a fresh data directory', async (t) => {
  const bench = await startDmpBench();
  t.teardown(() => bench.sim.close());
  const patient = { ins: '279035121518989', ipp: 'IPP-OPS-1', birthName: 'PAT-OPS', givenNames: ['CAMILLE'], birthDate: '19790328', sex: 'F' as const };
  const study = makeMgStudy({ patientId: patient.ipp, accession: 'ACC-OPS-1', seed: 21 });
  const extra = { roles: ['source'], dmp: bench.dmpConfig, publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 1 } };
  const pacs = { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'ops-pacs-')) };
  const plugins = [dmpService, createSourceRole({ retryBaseMs: 100, maxRetryDelayMs: 500, pollMs: 200 })];
  const box = await startTestBox({ pacs, extra, boxOptions: { plugins } });
  t.teardown(() => box.close());
  await box.pacs.store((async function* () { for (const f of study.files) yield f.part10; })());
  const report: ReportInput = {
    patient,
    studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: 'ACC-OPS-1', modality: 'MG', date: '20240115', description: 'MAMMOGRAPHIE BILATERALE' }],
    setId: '1.2.250.1.999.1.1.77.9',
  };
  const ack = await sendHl7(box.addresses.mllp.port, oruMessage(buildReportCda(report), report, { controlId: 'OPS-1' }));
  t.equal(ack.code, 'AA', 'the RIS report is acknowledged');
  t.equal((await settledJob(box, 'OPS-1')).state, 'done', 'and published to the DMP');
  const before = await adminGet(box, '/admin/publications');

  // the CLI reads the same database through its own config file while the box keeps running
  const raw = await rawTestBoxConfig({ pacs, extra });
  const liveConfig = writeConfig({ ...raw, dataDir: box.config.dataDir });
  const dir = mkdtempSync(join(tmpdir(), 'ops-backup-'));
  const file = join(dir, 'drimbox-backup.db');
  const b = await drimbox(['backup', file, '--config', liveConfig]);
  t.equal(b.status, 0, b.stderr);
  t.match(b.stdout, /backup of .*drimbox\.db written to .*drimbox-backup\.db \(\d+ bytes, SQLite database\)/);
  t.equal(statSync(file).mode & 0o777, 0o600, 'the backup is readable by its owner only');
  t.same(readdirSync(dir), ['drimbox-backup.db'], 'one self-contained file (no -wal beside it)');
  const again = await drimbox(['backup', file, '--config', liveConfig]);
  t.equal(again.status, 1, 'a backup never overwrites another');
  t.match(again.stderr, /exists: a backup never overwrites another one/);

  // the container's probe: the box's own /healthz over loopback, on the port its config names
  const userPort = Number(new URL(box.userUrl).port);
  const probe = await drimbox(['healthcheck', '--config', writeConfig({ ...raw, user: { ...(raw.user as object), port: userPort } })]);
  t.equal(probe.status, 0, `the running box answers its probe (${probe.stdout.trim()} ${probe.stderr.trim()})`);
  t.match(probe.stdout, /^ok$/m, 'with its /healthz status');
  const down = await drimbox(['healthcheck', '--config', writeConfig({ ...raw, user: { ...(raw.user as object), port: await freePort() } })]);
  t.equal(down.status, 1, 'no box on the port: the probe fails');
  t.match(down.stderr, /\/healthz on 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  const pki = await testPki();
  const otherCert = { cert: pki.boxes['box-b'].chain, key: pki.boxes['box-b'].key };
  const wrong = await drimbox(['healthcheck', '--config', writeConfig({ ...raw, user: { ...(raw.user as object), port: userPort, tls: otherCert } })]);
  t.equal(wrong.status, 1);
  t.match(wrong.stderr, /does not present user\.tls\.cert/, 'a listener with another certificate is not taken for the box');

  const underRunningBox = await drimbox(['restore', file, '--config', writeConfig({ ...raw, dataDir: box.config.dataDir, user: { ...(raw.user as object), port: userPort } }), '--force']);
  t.equal(underRunningBox.status, 1, 'no restore under a running box');
  t.match(underRunningBox.stderr, /the box is running \(its user port 127\.0\.0\.1:\d+ is taken\): stop it first/);

  // restore into a fresh dataDir, and a box started on it has the publication
  const freshDir = mkdtempSync(join(tmpdir(), 'ops-restored-'));
  const restoredConfig = writeConfig({ ...raw, dataDir: freshDir });
  const r = await drimbox(['restore', file, '--config', restoredConfig]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /restored to .*drimbox\.db$/m);
  const restored = await startTestBox({ pacs, extra: { ...extra, dataDir: freshDir }, boxOptions: { plugins } });
  try {
    const listing = await adminGet(restored, '/admin/publications');
    t.match(listing, { total: 1, items: [{ controlId: 'OPS-1', state: 'published', setId: report.setId, kosUid: String }] }, 'the restored box lists the published report');
    t.same(listing, before, 'exactly as the running box listed it');
  } finally {
    await restored.close();
  }

  // over an existing database: refused without --force; with it, the old one is kept beside
  const refused = await drimbox(['restore', file, '--config', restoredConfig]);
  t.equal(refused.status, 1);
  t.match(refused.stderr, /drimbox\.db exists: stop the box and pass --force/);
  const forced = await drimbox(['restore', file, '--config', restoredConfig, '--force']);
  t.equal(forced.status, 0, forced.stderr);
  const kept = /kept as (\S+)\)/.exec(forced.stdout)?.[1];
  t.ok(kept && existsSync(kept), `the replaced database is kept (${forced.stdout.trim()})`);

  const notDb = join(dir, 'not-a-backup.db');
  writeFileSync(notDb, 'hello');
  const bad = await drimbox(['restore', notDb, '--config', restoredConfig, '--force']);
  t.equal(bad.status, 1, 'a file that is not a database is refused');
  t.match(bad.stderr, /restore failed: .*not-a-backup\.db/);
});

async function adminGet(box: Box, path: string): Promise<unknown> {
  const agent = await mtlsAgent();
  try {
    const r = await request(`${box.userUrl}${path}`, { dispatcher: agent, headers: { authorization: `Bearer ${box.config.admin.token}` } });
    return await r.body.json();
  } finally {
    await agent.close();
  }
}

/** A certificate (and its key) that expired yesterday. */
async function expiredIdentity(): Promise<{ cert: string; key: string }> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=drimbox-viewer.expired.test', keys, signingAlgorithm: alg,
    notBefore: new Date(Date.now() - 30 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000),
  });
  const dir = mkdtempSync(join(tmpdir(), 'ops-expired-'));
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64').replace(/.{1,64}/g, '$&\n');
  writeFileSync(join(dir, 'user.crt'), cert.toString('pem'));
  writeFileSync(join(dir, 'user.key'), `-----BEGIN PRIVATE KEY-----\n${pkcs8}-----END PRIVATE KEY-----\n`, { mode: 0o600 });
  return { cert: join(dir, 'user.crt'), key: join(dir, 'user.key') };
}

t.test('drimbox doctor', async (t) => {
  const pki = await testPki();
  const orthanc: Orthanc = await startOrthanc({ gdcm: false });
  t.teardown(() => orthanc.stop());
  const bench: DmpBench = await startDmpBench();
  t.teardown(() => bench.sim.close());
  const secret = 'box-a-secret-0123456789';
  const psc: PscSimulator = await startPscSimulator({ clients: [{ client_id: 'box-a', client_secret: secret, redirect_uris: ['https://127.0.0.1/auth/callback'] }] });
  t.teardown(() => psc.close());
  const registry: StartedRegistry = await startTestRegistry();
  t.teardown(() => registry.close());
  const peerHost = `127.0.0.1:${await freePort()}`;
  await enrolApproved(registry, pki.boxes['box-a'], peerHost, 'Centre box-a');

  const good = await rawTestBoxConfig({
    name: 'box-a',
    pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl },
    extra: {
      roles: ['source', 'consumer'],
      dmp: bench.dmpConfig,
      psc: { issuer: psc.issuer, clientId: 'box-a', clientSecret: secret },
      allowList: { url: registry.allowListUrl, trustAnchors: [pki.ca.cert] },
    },
  });
  (good.peer as Record<string, unknown>).publicUrl = `https://${peerHost}`;

  await t.test('a good configuration: every check OK, exit 0', async (t) => {
    const r = await drimbox(['doctor', '--config', writeConfig(good)]);
    t.equal(r.status, 0, r.stdout + r.stderr);
    t.notMatch(r.stdout, /ÉCHEC/);
    for (const line of [
      /^OK {4}configuration: .* is valid \(box box-a, roles source, consumer\)$/m,
      /^OK {4}database: .*drimbox\.db does not exist yet/m,
      /^OK {4}certificate user\.tls: CN=box-a, .*key matches$/m,
      /^OK {4}certificate peer\.tls: CN=box-a, /m,
      new RegExp(`^OK {4}pacs: DICOMweb ${orthanc.dicomWebUrl} answered GET /studies\\?limit=1$`, 'm'),
      /^OK {4}dmp registry: https:\/\/127\.0\.0\.1:\d+\/.*: TLSv1\.[23], server CN=.*, HTTP \d+$/m,
      /^OK {4}dmp repository: /m,
      /^OK {4}psc: .*discovery ok, client box-a accepted at the introspection endpoint$/m,
      new RegExp(`^OK {4}allow-list: \\d+ entries, signed by .*; this box is listed \\(#\\d+, db=${peerHost.replace(/\./g, '\\.')}\\)$`, 'm'),
      /^every check passed$/m,
    ]) t.match(r.stdout, line);

    const dimse = await drimbox(['doctor', '--config', writeConfig({ ...good, pacs: { kind: 'dimse', host: '127.0.0.1', port: orthanc.dicomPort, calledAet: orthanc.aet } })]);
    t.equal(dimse.status, 0, dimse.stdout + dimse.stderr);
    t.match(dimse.stdout, new RegExp(`^OK {4}pacs: C-ECHO DRIMBOX → ${orthanc.aet}@127\\.0\\.0\\.1:${orthanc.dicomPort} succeeded \\(retrieve by c-get\\)$`, 'm'));
  });

  await t.test('a wrong PACS port, an expired certificate, a wrong PSC secret: ÉCHEC lines, exit 1', async (t) => {
    const expired = await expiredIdentity();
    const closedPort = await freePort();
    const bad = {
      ...good,
      pacs: { kind: 'dimse', host: '127.0.0.1', port: closedPort, calledAet: orthanc.aet, timeoutMs: 3000 },
      user: { ...(good.user as object), tls: expired },
      psc: { issuer: psc.issuer, clientId: 'box-a', clientSecret: 'not-the-secret-0123456789' },
    };
    const r = await drimbox(['doctor', '--config', writeConfig(bad)]);
    t.equal(r.status, 1, r.stdout + r.stderr);
    t.match(r.stdout, /^ÉCHEC certificate user\.tls: .*user\.crt \(CN=drimbox-viewer\.expired\.test\) expired on \d{4}-/m, 'the expired certificate is named');
    t.match(r.stdout, new RegExp(`^ÉCHEC pacs: .*(ECONNREFUSED|refused).*$`, 'm'), 'the PACS that does not answer');
    t.match(r.stdout, /^ÉCHEC psc: discovery ok, but PSC refuses client box-a .*HTTP 401/m, 'the refused PSC client');
    t.match(r.stdout, /^OK {4}dmp registry: /m, 'what works still says OK');
    t.match(r.stdout, /^3 check\(s\) failed$/m);

    const missing = await drimbox(['doctor', '--config', writeConfig({ ...good, peer: { ...(good.peer as object), tls: { ...((good.peer as Record<string, object>).tls), cert: '/nonexistent/box.chain.pem' } } })]);
    t.equal(missing.status, 1, 'a missing certificate file fails the configuration check');
    t.match(missing.stdout, /^ÉCHEC configuration: peer\.tls\.cert: no such file \/nonexistent\/box\.chain\.pem$/m);
  });
});
