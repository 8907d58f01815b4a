// The allow-list client keeps the last good list when an update is tampered, unsigned, stale or
// unreachable, survives a restart through its cache file, and answers peer/host questions.
import t from 'tap';
import { readFileSync, mkdtempSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { AllowListClient, peerOrigin } from '../../gateway/src/trust/allowlist-client.js';
import { signEnvelopedXades } from '../../gateway/src/trust/xades-sign.js';
import { ensureDevPki } from '../../certs/pki.js';

const fixtures = new URL('../fixtures/ans/liste-blanche/', import.meta.url);
const ansXml = readFileSync(new URL('LISTEBLANCHE_DRIM-M_SIGNEE_TEST.xml', fixtures), 'utf8');
const ansRoot = readFileSync(new URL('igc-sante-test-root.pem', fixtures), 'utf8');
const DB3_NODE_SUBJECT = 'C=FR\nST=Paris (75)\nO=AGENCE DU NUMERIQUE EN SANTE\nOU=318751275100020\nCN=db3.test.mesimagesmedicales.fr';

async function serve(handler: () => { status: number; body: string }): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const { status, body } = handler();
    res.writeHead(status, { 'content-type': 'application/xml' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/allowlist.xml`, server };
}

t.test('keeps the last good list on tampered, unsigned and unreachable updates; restarts from cache', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alc-'));
  const cacheFile = join(dir, 'allowlist.xml');
  let current = { status: 200, body: ansXml };
  const { url, server } = await serve(() => current);
  const logged: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => void logged.push(s) });
  const client = new AllowListClient({ url, trustAnchors: [ansRoot], cacheFile, logger, intervalMs: 3600_000 });
  let updates = 0;
  client.on('updated', () => updates++);
  await client.start();
  t.teardown(() => client.stop());
  t.equal(client.entries().length, 17);
  t.equal(updates, 1, "'updated' emitted");
  t.ok(client.status().ok, 'healthy');
  t.equal(client.status().source, 'download');
  t.ok(existsSync(cacheFile), 'persisted');
  t.ok(client.isPeerAllowed(DB3_NODE_SUBJECT), 'listed peer (node subject form)');
  t.notOk(client.isPeerAllowed('C=FR\nO=Evil\nCN=db3.test.mesimagesmedicales.fr'), 'unlisted peer');
  t.notOk(client.isPeerAllowed(undefined), 'no certificate');
  t.ok(client.isSourceHostAllowed('db3.test.mesimagesmedicales.fr'));
  t.ok(client.isSourceHostAllowed('https://DB3.test.mesimagesmedicales.fr:443/dicom-web/studies/1'), 'URL form');
  t.notOk(client.isSourceHostAllowed('db3.test.mesimagesmedicales.fr:8443'), 'another port of a listed host is not listed');
  t.ok(client.isSourceHostAllowed('db3.test.mesimagesmedicales.fr:443'), 'the default port');
  t.notOk(client.isPeerUrlAllowed('https://db3.test.mesimagesmedicales.fr/admin/publications'), 'a path outside /dicom-web/');
  t.notOk(client.isPeerUrlAllowed('http://db3.test.mesimagesmedicales.fr/dicom-web/studies'), 'plain http');
  t.notOk(client.isPeerUrlAllowed('https://u:p@db3.test.mesimagesmedicales.fr/dicom-web/studies'), 'credentials in the URL');
  t.notOk(client.isPeerUrlAllowed('https://db3.test.mesimagesmedicales.fr/dicom-web/../admin/x'), 'dot segments resolved before the check');
  t.notOk(client.isSourceHostAllowed('vi3.test.mesimagesmedicales.fr'), 'viewer host is not a source host');
  t.notOk(client.isSourceHostAllowed('evil.example.org'));

  current = { status: 200, body: ansXml.replace('db3.test.mesimagesmedicales.fr</db>', 'evil.example.org</db>') };
  t.equal(await client.refresh(), false, 'tampered update refused');
  t.equal(client.entries().length, 17, 'last good list kept');
  t.notOk(client.isSourceHostAllowed('evil.example.org'));
  t.match(client.status().lastError, /refused: .*digest/);
  t.ok(logged.some((l) => /keeping the last good list/.test(l)), 'loud warning');

  current = { status: 200, body: ansXml.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '') };
  t.equal(await client.refresh(), false, 'unsigned update refused');
  t.match(client.status().lastError, /not signed/);

  current = { status: 503, body: 'down' };
  t.equal(await client.refresh(), false);
  t.match(client.status().lastError, /unreachable.*HTTP 503/);

  current = { status: 200, body: ansXml };
  t.equal(await client.refresh(), true, 'good list again');
  t.equal(client.status().lastError, undefined);
  await new Promise<void>((r) => server.close(() => r()));
  t.equal(await client.refresh(), false, 'server gone');
  t.match(client.status().lastError, /unreachable/);
  t.equal(client.entries().length, 17);

  // A restart with the publisher unreachable starts from the cached, re-verified list.
  const restarted = new AllowListClient({ url, trustAnchors: [ansRoot], cacheFile, logger });
  await restarted.start();
  t.teardown(() => restarted.stop());
  t.equal(restarted.entries().length, 17, 'list from cache');
  t.equal(restarted.status().source, 'cache');
  t.ok(restarted.isPeerAllowed(DB3_NODE_SUBJECT));
  t.match(restarted.status().lastError, /unreachable/);

  // A tampered cache file is not trusted either.
  writeFileSync(cacheFile, ansXml.replace('db3.test', 'db9.test'));
  const fromBadCache = new AllowListClient({ url, trustAnchors: [ansRoot], cacheFile, logger });
  await fromBadCache.start();
  t.teardown(() => fromBadCache.stop());
  t.equal(fromBadCache.entries().length, 0);
  t.notOk(fromBadCache.status().ok, 'unhealthy without a list');
  t.notOk(fromBadCache.isPeerAllowed(DB3_NODE_SUBJECT), 'no list: every peer refused');
});

t.test('expired, replayed and stale lists', async (t) => {
  const { url, server } = await serve(() => ({ status: 200, body: ansXml }));
  t.teardown(() => server.close());
  const logger = pino({ level: 'silent' });
  const strict = new AllowListClient({ url, trustAnchors: [ansRoot], logger, maxListAgeMs: 7 * 24 * 3600_000 });
  t.teardown(() => strict.stop());
  await strict.start();
  t.equal(strict.entries().length, 0, 'list generated months ago refused with a 7-day limit');
  t.match(strict.status().lastError, /expired/);

  let clock = new Date();
  const c = new AllowListClient({ url, trustAnchors: [ansRoot], logger, intervalMs: 3600_000, now: () => clock });
  t.teardown(() => c.stop());
  await c.start();
  t.ok(c.status().ok);
  clock = new Date(clock.getTime() + 3 * 3600_000 + 1);
  t.notOk(c.status().ok, 'stale after 2 intervals + 1 h without a verified list');
  t.equal(c.entries().length, 17, 'but the list is still used');
  clock = new Date('2030-01-01T00:00:00Z');
  t.equal(await c.refresh(), false, 'signer certificate expired');
  t.match(c.status().lastError, /expired/);
});

t.test('an older list than the one in use is refused (replay)', async (t) => {
  const pki = await ensureDevPki(mkdtempSync(join(tmpdir(), 'alc-pki-')), { boxes: [] });
  const unsigned = ansXml.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '');
  const sign = (generated: string) => signEnvelopedXades(unsigned.replace(/<DateDeGeneration>[^<]+</, `<DateDeGeneration>${generated}<`),
    { keyPem: readFileSync(pki.signer.key, 'utf8'), certChainPem: readFileSync(pki.signer.chain, 'utf8') });
  let body = sign('2026-11-02T00:00:00Z');
  const { url, server } = await serve(() => ({ status: 200, body }));
  t.teardown(() => server.close());
  const c = new AllowListClient({ url, trustAnchors: [readFileSync(pki.ca.cert, 'utf8')], logger: pino({ level: 'silent' }) });
  t.teardown(() => c.stop());
  await c.start();
  t.equal(c.status().generatedAt?.toISOString(), '2026-11-02T00:00:00.000Z');
  body = sign('2026-11-01T00:00:00Z');
  t.equal(await c.refresh(), false, 'older, validly signed list refused');
  t.match(c.status().lastError, /older than the one in use/);
  body = sign('2026-11-03T00:00:00Z');
  t.equal(await c.refresh(), true, 'newer list accepted');
});

t.test('an unlisted peer makes the client download the list again, at most once per missRefreshMs', async (t) => {
  let downloads = 0;
  const { url, server } = await serve(() => { downloads++; return { status: 200, body: ansXml }; });
  t.teardown(() => server.close());
  let offset = 0;
  const client = new AllowListClient({ url, trustAnchors: [ansRoot], intervalMs: 3600_000, missRefreshMs: 5 * 60_000, logger: pino({ level: 'silent' }), now: () => new Date(Date.now() + offset) });
  await client.start();
  t.teardown(() => client.stop());
  t.equal(downloads, 1, 'downloaded at start');
  t.ok(await client.allowsPeer(DB3_NODE_SUBJECT), 'a listed peer');
  t.equal(downloads, 1, 'a listed peer costs no download');
  t.notOk(await client.allowsPeer('CN=unknown.example,O=X,C=FR'), 'an unlisted peer is refused');
  t.equal(downloads, 2, '…after one more download');
  t.notOk(await client.allowsPeer('CN=other.example,O=X,C=FR'));
  t.equal(downloads, 2, 'no new download within missRefreshMs');
  offset = 5 * 60_000 + 1000;
  const both = await Promise.all([client.allowsPeer('CN=a.example,O=X,C=FR'), client.allowsPeer('CN=b.example,O=X,C=FR')]);
  t.same(both, [false, false]);
  t.equal(downloads, 3, 'after the interval, one download shared by concurrent misses');
});

t.test('peerOrigin keeps the port (443 elided)', async (t) => {
  t.equal(peerOrigin('Box.Example.org.'), 'https://box.example.org');
  t.equal(peerOrigin('box:8443'), 'https://box:8443');
  t.equal(peerOrigin('box:443'), 'https://box');
  t.equal(peerOrigin('[::1]:8443'), 'https://[::1]:8443');
  t.equal(peerOrigin('box/x'), undefined);
  t.equal(peerOrigin('u@box'), undefined);
});
