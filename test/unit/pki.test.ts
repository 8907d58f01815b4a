// The dev PKI: chains verify with node's X509Certificate, and an mTLS handshake works on loopback.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { createCa, issueCertificate, ensureDevPki, rfc2253FromNodeSubject } from '../../certs/pki.js';

t.test('issued certificate chains to its CA and carries the right usages', async (t) => {
  const ca = await createCa('Test CA');
  const leaf = await issueCertificate(ca, { commonName: 'box-x', organization: 'Centre X', organizationalUnit: 'imaging', usage: 'server' });
  const caX = new X509Certificate(ca.certPem);
  const leafX = new X509Certificate(leaf.certPem);
  t.ok(caX.ca, 'CA flag on the CA');
  t.notOk(leafX.ca, 'no CA flag on the leaf');
  t.ok(leafX.checkIssued(caX), 'issued by the CA');
  t.ok(leafX.verify(caX.publicKey), 'signature by the CA key');
  t.equal(leaf.subjectDn, 'CN=box-x,OU=imaging,O=Centre X,C=FR');
  t.equal(leaf.nodeSubject, leafX.subject);
  t.equal(rfc2253FromNodeSubject(leafX.subject), leaf.subjectDn);
  t.match(leafX.subjectAltName ?? '', /DNS:localhost/);
  t.match(leafX.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  t.same(leafX.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth only');
  const client = new X509Certificate((await issueCertificate(ca, { commonName: 'c', usage: 'client' })).certPem);
  t.same(client.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth only');
  t.equal(client.subjectAltName, undefined, 'no default SAN on a client certificate');
  t.equal(ca.subject, 'CN=Test CA,O=DRIMbox dev,C=FR');
});

t.test('ensureDevPki is idempotent, keys are private, chains verify', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pki-'));
  const a = await ensureDevPki(dir, { boxes: ['box-a', 'box-b'] });
  const caPem = readFileSync(a.ca.cert, 'utf8');
  const b = await ensureDevPki(dir, { boxes: ['box-a', 'box-b', 'box-c'] });
  t.equal(readFileSync(b.ca.cert, 'utf8'), caPem, 'CA kept');
  t.equal(readFileSync(b.boxes['box-a'].cert, 'utf8'), readFileSync(a.boxes['box-a'].cert, 'utf8'), 'box cert kept');
  t.ok(b.boxes['box-c'], 'new box added');
  for (const f of [b.ca.key, b.signingCa.key, b.signer.key, b.registry.key, b.boxes['box-a'].key, b.demoClient.key, b.dmpSimulator.key]) {
    t.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600`);
  }
  const root = new X509Certificate(caPem);
  const sCa = new X509Certificate(readFileSync(b.signingCa.cert));
  const signer = new X509Certificate(readFileSync(b.signer.cert));
  t.ok(sCa.ca && sCa.checkIssued(root) && sCa.verify(root.publicKey), 'signing CA under root');
  t.ok(!signer.ca && signer.checkIssued(sCa) && signer.verify(sCa.publicKey), 'signer under signing CA');
  t.equal(b.boxes['box-a'].subjectDn, 'CN=box-a,O=Centre box-a,C=FR');
  t.equal(readFileSync(b.signer.chain, 'utf8').match(/BEGIN CERTIFICATE/g)?.length, 2, 'signer chain = signer + signing CA');
});

t.test('mTLS handshake on 127.0.0.1 with dev certificates', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pki-'));
  const pki = await ensureDevPki(dir, { boxes: ['box-a', 'box-b'] });
  const ca = readFileSync(pki.ca.cert);
  const server = createServer({
    cert: readFileSync(pki.boxes['box-a'].chain), key: readFileSync(pki.boxes['box-a'].key), ca,
    requestCert: true, rejectUnauthorized: true,
  }, (sock: TLSSocket) => {
    const peer = sock.getPeerX509Certificate();
    sock.end(peer ? rfc2253FromNodeSubject(peer.subject) : 'none');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const got = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca,
      cert: readFileSync(pki.boxes['box-b'].chain), key: readFileSync(pki.boxes['box-b'].key) }, () => {
      if (!s.authorized) reject(new Error(String(s.authorizationError)));
    });
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
  t.equal(got, 'CN=box-b,O=Centre box-b,C=FR', 'server saw the client certificate subject');

  // A client without certificate is refused by the server.
  const refused = await new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca });
    s.on('data', () => resolve(false));
    s.on('error', () => resolve(true));
    s.on('end', () => resolve(true));
  });
  t.ok(refused, 'no client certificate: handshake refused');
});
