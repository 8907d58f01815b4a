// The PSC simulator over HTTPS (dev CA made at test time): the gateway's discovery and the
// introspector reach it with a fetch that trusts that CA.
import t from 'tap';
import Fastify from 'fastify';
import { Agent, fetch as undiciFetch } from 'undici';
import { createCa, issueCertificate } from '../../certs/pki.js';
import { startPscSimulator } from '../../sandbox/psc/index.js';
import { openStore } from '../../gateway/src/store/database.js';
import { pscLoginPlugin } from '../../gateway/src/trust/psc-login.js';
import { SessionStore } from '../../gateway/src/trust/sessions.js';
import { TokenIntrospector } from '../../gateway/src/trust/introspection.js';

t.test('HTTPS issuer: discovery, authorization redirect and introspection', async (t) => {
  const ca = await createCa('PSC test CA');
  const server = await issueCertificate(ca, { commonName: '127.0.0.1', usage: 'server', sans: ['127.0.0.1'] });
  const sim = await startPscSimulator({
    tls: { key: server.keyPem, cert: server.certPem },
    clients: [{ client_id: 'box', client_secret: 'box-secret', redirect_uris: ['https://127.0.0.1:1/auth/callback'] }],
  });
  const agent = new Agent({ connect: { ca: ca.certPem } });
  const trustingFetch = ((url: string | URL, init?: Record<string, unknown>) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof fetch;
  const db = await openStore('sqlite::memory:');
  const app = Fastify();
  t.teardown(async () => {
    await app.close();
    await sim.close();
    await agent.close();
    await db.close();
  });
  t.match(sim.issuer, /^https:\/\/127\.0\.0\.1:\d+$/);

  await app.register(pscLoginPlugin, {
    issuer: sim.issuer, clientId: 'box', clientSecret: 'box-secret', redirectUri: 'https://127.0.0.1:1/auth/callback',
    sessions: new SessionStore(db.db), fetch: trustingFetch,
  });
  const login = await app.inject({ method: 'GET', url: '/auth/login' });
  t.equal(login.statusCode, 302);
  t.match(login.headers.location, `${sim.issuer}/auth?`);

  const again = await app.inject({ method: 'GET', url: '/auth/login' });
  t.not(new URL(again.headers.location as string).searchParams.get('state'), new URL(login.headers.location as string).searchParams.get('state'), 'fresh state per login');

  const token = await sim.issueAccessToken({ rpps: '10001234567', clientId: 'box' });
  const i = new TokenIntrospector({ issuer: sim.issuer, clientId: 'box', clientSecret: 'box-secret', fetch: trustingFetch });
  t.match(await i.introspect(token), { active: true, rpps: '10001234567' });
  const strangers = new TokenIntrospector({ issuer: sim.issuer, clientId: 'box', clientSecret: 'box-secret', timeoutMs: 2000 });
  t.match(await strangers.introspect(token), { active: false, reason: 'unavailable' }, 'an untrusted certificate is not accepted');
});
