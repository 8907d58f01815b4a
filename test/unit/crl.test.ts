// The CRL store takes only CRLs its trust anchors signed, never goes back to an older one, keeps the
// last good CRL when an update is bad, and refuses certificates of an issuer without a CRL.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import pino from 'pino';
import { createCa, issueCertificate, issueCrl } from '../../certs/pki.js';
import { CrlStore } from '../../gateway/src/trust/crl.js';

t.test('CRL verification, replay and fail-closed issuer check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crl-'));
  const ca = await createCa('Peer CA');
  const other = await createCa('Other CA');
  const good = await issueCertificate(ca, { commonName: 'box-a', usage: 'server+client' });
  const bad = await issueCertificate(ca, { commonName: 'box-x', usage: 'server+client' });
  const foreign = await issueCertificate(other, { commonName: 'box-f', usage: 'server+client' });
  const serial = (pem: string) => new X509Certificate(pem).serialNumber;
  const file = join(dir, 'ca.crl');
  const store = new CrlStore({ files: [file], urls: [], issuersPem: ca.certPem, logger: pino({ level: 'silent' }) });

  writeFileSync(file, await issueCrl(ca, [serial(bad.certPem)]));
  t.equal(await store.refresh(), true);
  t.same(store.check(new X509Certificate(good.certPem)), { ok: true });
  t.match(store.check(new X509Certificate(bad.certPem)), { ok: false, reason: 'revoked' });
  t.match(store.check(new X509Certificate(foreign.certPem)), { ok: false, reason: 'unknown' }, 'an issuer without a CRL: refused');

  const older = await issueCrl(ca, []);
  await new Promise((r) => setTimeout(r, 1100)); // thisUpdate has second precision
  const newer = await issueCrl(ca, [serial(bad.certPem), serial(good.certPem)]);
  writeFileSync(file, newer);
  t.equal(await store.refresh(), true);
  t.match(store.check(new X509Certificate(good.certPem)), { ok: false, reason: 'revoked' }, 'a newer CRL applies without restart');

  writeFileSync(file, older);
  t.equal(await store.refresh(), false, 'an older CRL (replay) is refused');
  t.match(store.status(), { ok: false, errors: [/possible replay/] });
  t.match(store.check(new X509Certificate(good.certPem)), { ok: false, reason: 'revoked' }, 'the newest CRL stays in use');

  writeFileSync(file, await issueCrl(other, []));
  t.equal(await store.refresh(), false, 'a CRL from a CA that is not a trust anchor is refused');
  t.match(store.status().errors, [/not a CA of peer.tls.ca/]);

  const forged = await issueCrl({ ...other, certPem: ca.certPem, subject: ca.subject }, []); // names the CA, signed by another key
  writeFileSync(file, forged);
  t.equal(await store.refresh(), false, 'a CRL whose signature does not verify is refused');
  t.match(store.status().errors, [/signature does not verify/]);
  t.match(store.check(new X509Certificate(bad.certPem)), { ok: false, reason: 'revoked' }, 'and the last good CRL stays in use');

  const none = new CrlStore({ files: [], urls: [], issuersPem: ca.certPem, logger: pino({ level: 'silent' }) });
  t.same(none.check(new X509Certificate(foreign.certPem)), { ok: true }, 'no CRL configured: revocation is not checked');
  t.throws(() => new CrlStore({ files: [], urls: ['ftp://x/ca.crl'], issuersPem: ca.certPem, logger: pino({ level: 'silent' }) }), /not an http\(s\) URL/);
});
