// The consumer checks a source box's server certificate against the CAs' CRLs (peer.tls.crlFiles), as
// source boxes check their callers': a listed source box whose certificate the CA revoked is refused in
// the TLS handshake, before any clinician token is sent to it. Two real source boxes (the good one and
// one with the CA-revoked certificate, both listed by the registry) and a real consumer box.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBox } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { startTestRegistry, enrolApproved } from '../helpers/registry.js';
import { trustLayer } from '../../gateway/src/trust/layer.js';
import { sourceRole } from '../../gateway/src/source/role.js';
import { createConsumerRole, consumerOf } from '../../gateway/src/consumer/role.js';
import { PeerCertificateRevokedError, PeerStatusError } from '../../gateway/src/consumer/peer-client.js';
import type { Box } from '../../gateway/src/box.js';

t.test("a source box whose certificate the CA revoked is refused by the consumer's handshake", async (t) => {
  const pki = await testPki();
  const registry = await startTestRegistry();
  t.teardown(() => registry.close());

  const source = async (identity: { chain: string; key: string }): Promise<Box> => {
    const box = await startTestBox({
      name: 'box-a',
      pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'revoked-src-pacs-')) },
      extra: { peer: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: identity.chain, key: identity.key, ca: pki.ca.cert }, allowedPeers: [] } },
      boxOptions: { plugins: [trustLayer, sourceRole] },
    });
    t.teardown(() => box.close());
    return box;
  };
  const good = await source(pki.boxes['box-a']);
  const revoked = await source(pki.revokedBox);
  await enrolApproved(registry, pki.boxes['box-a'], new URL(good.peerUrl).host, 'Centre box-a');
  await enrolApproved(registry, pki.revokedBox, new URL(revoked.peerUrl).host, 'Centre box-revoked');

  const consumer = await startTestBox({
    name: 'box-b',
    pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'revoked-cons-pacs-')) },
    allowedPeers: [],
    extra: {
      roles: ['consumer'],
      peer: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: pki.boxes['box-b'].chain, key: pki.boxes['box-b'].key, ca: pki.ca.cert, crlFiles: [pki.crl] }, allowedPeers: [] },
      allowList: { url: registry.allowListUrl, trustAnchors: [pki.ca.cert] },
    },
    boxOptions: { plugins: [trustLayer, createConsumerRole({ peer: { retries: 2 } })] },
  });
  t.teardown(() => consumer.close());
  const peer = consumerOf(consumer.services)!.peer;
  const call = { token: 'a-clinician-token', kosUid: '1.2.3.4', accept: 'application/dicom+json' };

  // the good source is reached: it answers (and refuses this consumer, unknown to it), so the handshake passed
  const answered = await peer.get(`${good.peerUrl}/dicom-web/studies`, call).then(() => 'served', (e) => e);
  t.ok(answered instanceof PeerStatusError, `the source with a valid certificate is reached (${answered})`);

  const before = (await revoked.audit.recent(1))[0]?.id ?? 0;
  const refused = await peer.get(`${revoked.peerUrl}/dicom-web/studies`, call).then(() => 'served', (e) => e);
  t.ok(refused instanceof PeerCertificateRevokedError, `the revoked source is refused (${refused})`);
  t.match((refused as Error).message, /revoked by its CA/, 'with the reason');
  t.equal(peer.connectsByOrigin.get(new URL(revoked.peerUrl).origin) ?? 0, 0, 'no connection was established with it');
  t.same((await revoked.audit.recent(5)).filter((r) => r.id > before), [], 'no request reached it: the token was never sent');
});
