// One dev PKI per test process (a CA, box identities, a demo client, a CRL and a revoked box), plus an
// untrusted CA's client.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevPki, createCa, issueCertificate, revokeDevCertificates, type DevPki } from '../../certs/pki.js';

let cached: Promise<DevPki> | undefined;

export function testPki(): Promise<DevPki> {
  cached ??= ensureDevPki(mkdtempSync(join(tmpdir(), 'drimbox-pki-')), { boxes: ['box-a', 'box-b', 'box-c'] });
  return cached;
}

/** A client identity from a CA no box trusts. */
export async function foreignClient(): Promise<{ cert: string; key: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'drimbox-foreign-'));
  const ca = await createCa('Some Other CA');
  const id = await issueCertificate(ca, { commonName: 'box-a', organization: 'Centre box-a', usage: 'server+client' });
  writeFileSync(join(dir, 'c.crt'), id.certPem);
  writeFileSync(join(dir, 'c.key'), id.keyPem);
  return { cert: join(dir, 'c.crt'), key: join(dir, 'c.key') };
}

/** The test CA revokes certificates: its CRL (`pki.crl`) is re-issued listing them too. */
export async function revokeTestCertificates(certFiles: string[]): Promise<void> {
  await revokeDevCertificates(await testPki(), certFiles);
}
