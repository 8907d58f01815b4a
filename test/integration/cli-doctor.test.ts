// `drimbox doctor --config FILE` against the real sandbox peers (Orthanc over DICOMweb and DIMSE, the
// DMP and PSC simulators, the registry's signed allow-list): all OK on a good config; ÉCHEC lines and
// exit 1 on a wrong PACS port, an expired certificate, a refused PSC client, a missing file.
import 'reflect-metadata';
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { rawTestBoxConfig } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { drimbox, writeConfig } from '../helpers/cli.js';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { startDmpBench, type DmpBench } from '../helpers/publication-env.js';
import { startTestRegistry, enrolApproved } from '../helpers/registry.js';
import { startPscSimulator, type PscSimulator } from '../../sandbox/psc/index.js';
import type { StartedRegistry } from '../../registry/src/app.js';

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
  ((good.peer as Record<string, Record<string, unknown>>).tls).crlFiles = [pki.crl];

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
      /^OK {4}revocation: .*DRIMbox Dev Root CA.*: \d+ revoked, next update \d{4}-/m,
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

    const revokedPeer = { ...(good.peer as Record<string, Record<string, unknown>>) };
    revokedPeer.tls = { ...revokedPeer.tls, cert: pki.revokedBox.chain, key: pki.revokedBox.key };
    const revoked = await drimbox(['doctor', '--config', writeConfig({ ...good, peer: revokedPeer })]);
    t.equal(revoked.status, 1);
    t.match(revoked.stdout, /^ÉCHEC revocation: this box's own peer certificate is revoked: by /m, 'a revoked box certificate is named');

    const missing = await drimbox(['doctor', '--config', writeConfig({ ...good, peer: { ...(good.peer as object), tls: { ...((good.peer as Record<string, object>).tls), cert: '/nonexistent/box.chain.pem' } } })]);
    t.equal(missing.status, 1, 'a missing certificate file fails the configuration check');
    t.match(missing.stdout, /^ÉCHEC configuration: peer\.tls\.cert: no such file \/nonexistent\/box\.chain\.pem$/m);
  });
});
