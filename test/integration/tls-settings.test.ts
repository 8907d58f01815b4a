// The box's listeners speak TLS 1.2+ with AEAD suites only, and choose AES-128-GCM whatever order the
// client offers (Node clients offer AES-256 first): checked with real handshakes on both listeners.
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { startTestBox } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';

const handshake = (url: string, opts: ConnectionOptions) => new Promise<{ cipher?: string; version?: string | null; error?: string }>((resolve) => {
  const u = new URL(url);
  const s = connect({ host: '127.0.0.1', port: Number(u.port), servername: 'localhost', ...opts }, () => {
    resolve({ cipher: s.getCipher().standardName, version: s.getProtocol() });
    s.end();
  });
  s.on('error', (e) => resolve({ error: e.message }));
});

t.test('peer and user listeners: AEAD suites only, AES-128-GCM chosen', async (t) => {
  const pki = await testPki();
  const box = await startTestBox({ pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'tls-pacs-')) } });
  t.teardown(() => box.close());
  const ca = readFileSync(pki.ca.cert);
  const client = { cert: readFileSync(pki.demoClient.cert), key: readFileSync(pki.demoClient.key) };
  for (const [name, url] of [['peer', box.peerUrl], ['user', box.userUrl]] as const) {
    const tls13 = await handshake(url, { ca, ...client });
    t.same(tls13, { cipher: 'TLS_AES_128_GCM_SHA256', version: 'TLSv1.3' }, `${name}: TLS 1.3 with AES-128-GCM although the client offers AES-256 first`);
    const tls12 = await handshake(url, { ca, ...client, maxVersion: 'TLSv1.2' });
    t.same(tls12, { cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', version: 'TLSv1.2' }, `${name}: TLS 1.2 with ECDHE and AES-128-GCM`);
    const cbc = await handshake(url, { ca, ...client, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA256:AES128-SHA' });
    t.ok(cbc.error, `${name}: a client offering only CBC suites is refused (${cbc.error})`);
    const old = await handshake(url, { ca, ...client, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    t.ok(old.error, `${name}: TLS 1.1 is refused`);
  }
});
