// Revocation takes effect within minutes, on a real source box (Orthanc, the registry's signed
// allow-list, PSC tokens introspected at the simulator, the CA's CRL downloaded over HTTP): the
// registry's revoke asks for confirmation and can be undone; the box's admin "refresh now" applies a
// revocation at once and closes the revoked peer's open connections, a retrieve streaming at that
// moment included; a certificate on the CA's CRL is refused at its first request (401, audited); and
// without any admin action the periodic refresh (allowList.refreshMinutes) catches up within a minute.
import t from 'tap';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { startOrthanc } from '../helpers/orthanc.js';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki, revokeTestCertificates } from '../helpers/pki.js';
import { startTestRegistry, enrolApproved, revokeEnrolment, approveEnrolment, REGISTRY_ADMIN } from '../helpers/registry.js';
import { waitFor } from '../helpers/wait.js';
import { grantKos } from '../helpers/kos-grant.js';
import { startPscSimulator } from '../../sandbox/psc/index.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { trustLayer } from '../../gateway/src/trust/layer.js';
import { sourceRole } from '../../gateway/src/source/role.js';
import { KOS_HEADER } from '../../gateway/src/source/kos-access.js';

t.test('revoked at the registry or by the CA: refused within minutes, open connections closed', async (t) => {
  const pki = await testPki();
  const registry = await startTestRegistry();
  t.teardown(() => registry.close());
  const ids: Record<string, number> = {};
  for (const name of ['box-b', 'box-c'] as const) ids[name] = await enrolApproved(registry, pki.boxes[name], `${name}.localhost`, `Centre ${name}`);
  // the CA revoked this box's certificate, but the registry still lists it
  await enrolApproved(registry, pki.revokedBox, 'box-revoked.localhost', 'Centre box-revoked');

  // the CA publishes its CRL over plain HTTP, as CAs do (the CRL is signed)
  const crlServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(readFileSync(pki.crl)));
  await new Promise<void>((r) => crlServer.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => crlServer.close(() => r())));
  const crlUrl = `http://127.0.0.1:${(crlServer.address() as { port: number }).port}/ca.crl`;

  const psc = await startPscSimulator({ clients: [
    { client_id: 'box-a', client_secret: 'box-a-secret-0123456789', redirect_uris: ['https://127.0.0.1/auth/callback'] },
    { client_id: 'box-b', client_secret: 'box-b-secret-0123456789', redirect_uris: ['https://127.0.0.1/auth/callback'] },
  ] });
  t.teardown(() => psc.close());

  const orthanc = await startOrthanc({ gdcm: false });
  t.teardown(() => orthanc.stop());
  const study = makeMgStudy({ size: [2400, 1900], seed: 21 });
  await orthanc.upload(study.files.map((f) => f.part10));
  const adminToken = 'box-a-admin-token-0123456789abcdef';
  const box = await startTestBox({
    name: 'box-a',
    pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl },
    extra: {
      peer: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: pki.boxes['box-a'].chain, key: pki.boxes['box-a'].key, ca: pki.ca.cert, crlUrls: [crlUrl] }, allowedPeers: [] },
      admin: { token: adminToken },
      allowList: { url: registry.allowListUrl, trustAnchors: [pki.ca.cert], refreshMinutes: 1 },
      psc: { issuer: psc.issuer, clientId: 'box-a', clientSecret: 'box-a-secret-0123456789' },
    },
    boxOptions: { plugins: [trustLayer, sourceRole] },
  });
  t.teardown(() => box.close());
  const kosUid = await grantKos(box, study.files.map((f) => f.part10));
  const token = await psc.issueAccessToken({ rpps: psc.clinicians[0].rpps, clientId: 'box-b' });
  const headers = { authorization: `Bearer ${token}`, [KOS_HEADER]: kosUid, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' };
  const user = await mtlsAgent();
  t.teardown(() => user.close());
  const ask = async (dispatcher: Dispatcher) => {
    const before = (await box.audit.recent(1))[0]?.id ?? 0;
    const r = await request(`${box.peerUrl}/dicom-web/studies?StudyInstanceUID=${study.studyInstanceUid}`, { dispatcher, headers: { ...headers, accept: 'application/dicom+json' } });
    const body = await r.body.json() as { title?: string; status?: number };
    return { status: r.statusCode, type: String(r.headers['content-type']), body, audit: (await box.audit.recent(20)).filter((row) => row.id > before) };
  };
  const refreshNow = async (token: string | null = adminToken) => {
    const r = await request(`${box.userUrl}/admin/allowlist/refresh`, { method: 'POST', dispatcher: user, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    return { status: r.statusCode, body: await r.body.json() as any };
  };
  const agents = Object.fromEntries(await Promise.all((['box-b', 'box-c'] as const).map(async (n) => [n, await mtlsAgent(pki.boxes[n])] as const)));
  t.teardown(() => Promise.all(Object.values(agents).map((a) => a.close())));

  t.equal((await ask(agents['box-b'])).status, 200, 'box-b, listed, is served');

  // --- the CA's CRL ---------------------------------------------------------------------------------
  const revoked = await ask(await mtlsAgent(pki.revokedBox));
  t.equal(revoked.status, 401, 'a listed box whose certificate the CA revoked is refused at its first request');
  t.match(revoked.type, /^application\/problem\+json/);
  t.equal(revoked.body.title, 'Client certificate revoked');
  t.match(revoked.audit, [{ status: 401, actor_dn: /CN=box-revoked/, outcome: /revoked/ }], 'and audited');

  // --- the admin action -------------------------------------------------------------------------------
  t.equal((await refreshNow(null)).status, 401, 'refresh needs the admin credential');
  t.equal((await refreshNow('not-the-admin-token-at-all-0000')).status, 403, 'a wrong credential is refused');
  const state = await refreshNow();
  t.equal(state.status, 200);
  t.match(state.body, { refreshed: true, allowList: { ok: true, entries: [{ dn: /box-b/ }, { dn: /box-c/ }, { dn: /box-revoked/ }] }, revocation: { ok: true, crls: [{ revoked: 1, source: crlUrl }] } });

  // --- revoked at the registry while a retrieve streams ----------------------------------------------
  const stream = await request(`${box.peerUrl}/dicom-web/studies/${study.studyInstanceUid}`, { dispatcher: agents['box-b'], headers });
  t.equal(stream.statusCode, 200, 'box-b starts retrieving the study');
  const it = stream.body[Symbol.asyncIterator]();
  let received = ((await it.next()).value as Buffer).length; // then box-b reads slowly: the answer is in flight
  await revokeEnrolment(registry, ids['box-b'], 'box-b.localhost');
  const afterRevoke = await refreshNow();
  t.equal(afterRevoke.status, 200);
  t.notMatch(afterRevoke.body.allowList.entries.map((e: { dn: string }) => e.dn).join(' '), /box-b/, 'the new list no longer names box-b');
  const outcome = await (async () => {
    try {
      for (let c = await it.next(); !c.done; c = await it.next()) received += (c.value as Buffer).length;
      return 'complete';
    } catch (e) {
      return `aborted: ${(e as Error).message}`;
    }
  })();
  t.match(outcome, /^aborted/, 'the retrieve in flight is cut, not completed');
  t.ok(received < study.files.reduce((n, f) => n + f.part10.length, 0), 'box-b did not get the whole study');
  t.ok((await box.audit.recent(20)).some((row) => row.route === '(connection)' && row.status === 403 && /CN=box-b/.test(row.actor_dn ?? '')), 'the closed connection is audited');
  // every connection box-b held was closed: it connects again
  const refused = await ask(await mtlsAgent(pki.boxes['box-b']));
  t.equal(refused.status, 403, 'box-b is refused at once, without waiting for the periodic refresh');
  t.equal(refused.audit[0]?.status, 403);

  // --- and undone --------------------------------------------------------------------------------------
  await approveEnrolment(registry, ids['box-b']);
  t.equal((await refreshNow()).status, 200);
  agents['box-b'] = await mtlsAgent(pki.boxes['box-b']);
  t.equal((await ask(agents['box-b'])).status, 200, 're-approved at the registry: served again');

  // --- the CA revokes box-c's certificate: its open keep-alive connection goes too -------------------
  t.equal((await ask(agents['box-c'])).status, 200, 'box-c is served (its connection stays open)');
  await revokeTestCertificates([pki.boxes['box-c'].cert]);
  const crlRefresh = await refreshNow();
  t.match(crlRefresh.body, { revocation: { crls: [{ revoked: 2 }] } }, 'the new CRL is in use without restart');
  t.ok((await box.audit.recent(20)).some((row) => row.route === '(connection)' && row.status === 401 && /CN=box-c/.test(row.actor_dn ?? '')), "box-c's open connection was closed and audited");
  const c = await ask(await mtlsAgent(pki.boxes['box-c']));
  t.equal(c.status, 401, 'box-c is refused');
  t.equal(c.body.title, 'Client certificate revoked');

  // --- without the admin action: the periodic refresh (1 min here, 10 by default) catches up ---------
  await revokeEnrolment(registry, ids['box-b'], 'box-b.localhost');
  const started = Date.now();
  await waitFor(async () => {
    const fresh = await mtlsAgent(pki.boxes['box-b']);
    try { return (await ask(fresh)).status === 403; } finally { await fresh.close(); }
  }, 90_000, 'box-b refused after the periodic refresh', 2_000);
  t.ok(Date.now() - started < 90_000, `box-b refused ${Math.round((Date.now() - started) / 1000)} s after its revocation, without any action on the box`);

  const health = await request(`${box.userUrl}/healthz/dependencies`, { dispatcher: user });
  t.match(await health.body.json(), { checks: [{ name: 'pacs', ok: true }, { name: 'revocation', ok: true }, { name: 'allow-list', ok: true }] });

  // the registry unreachable: the refresh says so (502), the last good list stays in force, audited
  await registry.close();
  const down = await refreshNow();
  t.equal(down.status, 502, 'a refused refresh is reported');
  t.match(down.body, { title: 'Refresh failed', detail: /unreachable/, allowList: { entries: [{ dn: /box-c/ }, { dn: /box-revoked/ }] } }, 'with the list still in use');
  t.match((await box.audit.recent(5)).find((row) => row.direction === 'admin'), { route: '/admin/allowlist/refresh', status: 502 }, 'admin refreshes are audited');
});
