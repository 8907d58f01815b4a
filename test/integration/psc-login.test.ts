// Browser-less PSC login against the real OIDC simulator: /auth/login → simulator login page →
// pick a clinician → consent → /auth/callback → session cookie → protected page.
import t from 'tap';
import Fastify, { type FastifyInstance } from 'fastify';
import { startPscSimulator, type PscSimulator } from '../../sandbox/psc/index.js';
import { openStore } from '../../gateway/src/store/database.js';
import { pscLoginPlugin, requireClinician } from '../../gateway/src/trust/psc-login.js';
import { SessionStore } from '../../gateway/src/trust/sessions.js';
import { TokenIntrospector } from '../../gateway/src/trust/introspection.js';
import { freePort } from '../helpers/ports.js';
import { CookieJar } from '../helpers/cookie-jar.js';
import { browse as browsePages, formAction } from '../helpers/browser.js';

/** A browser on loopback, no client certificate: browser.ts's walk with the default dispatcher. */
const browse = (jar: CookieJar, url: string, init: { method?: string; form?: Record<string, string>; accept?: string } = {}, stopAt?: (u: string) => boolean) =>
  browsePages(jar, undefined, url, init, stopAt);

const RPPS = '10001234567';

interface Ctx {
  sim: PscSimulator;
  app: FastifyInstance;
  base: string;
  sessions: SessionStore;
}

async function setup(t: { teardown(fn: () => unknown): void }, simOptions: { accessTokenTtlSeconds?: number } = {}): Promise<Ctx> {
  const gwPort = await freePort();
  const base = `http://127.0.0.1:${gwPort}`;
  const sim = await startPscSimulator({
    ...simOptions,
    clients: [
      { client_id: 'box-consumer', client_secret: 'consumer-secret', redirect_uris: [`${base}/auth/callback`] },
      { client_id: 'box-source', client_secret: 'source-secret', redirect_uris: ['http://127.0.0.1:1/unused'] },
    ],
  });
  const db = await openStore('sqlite::memory:');
  const sessions = new SessionStore(db.db, { idleTimeoutMs: 5 * 60_000, absoluteTimeoutMs: 3600_000 });
  const app = Fastify({ logger: false });
  await app.register(pscLoginPlugin, {
    issuer: sim.issuer,
    clientId: 'box-consumer',
    clientSecret: 'consumer-secret',
    redirectUri: `${base}/auth/callback`,
    acrValues: ['eidas1'],
    scopes: ['openid', 'scope_all'],
    sessions,
  });
  app.get('/viewer', { preHandler: requireClinician }, async (req) => ({ clinician: req.clinicianSession!.clinician, query: req.query }));
  await app.listen({ port: gwPort, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    await sim.close();
    await db.close();
  });
  return { sim, app, base, sessions };
}

/** Runs the login up to the redirect back to the gateway's callback; returns that URL. */
async function loginUntilCallback(ctx: Ctx, jar: CookieJar, returnTo = '/viewer?study=1.2.3'): Promise<string> {
  const isCallback = (u: string) => u.startsWith(`${ctx.base}/auth/callback`);
  const loginPage = await browse(jar, `${ctx.base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
  if (!loginPage.url.startsWith(ctx.sim.issuer) || !loginPage.body.includes(`RPPS ${RPPS}`)) throw new Error(`expected the PSC login page, got ${loginPage.url}`);
  const consentPage = await browse(jar, formAction(loginPage.body, loginPage.url, new RegExp(`value="${RPPS}"`)), { method: 'POST', form: { rpps: RPPS } }, isCallback);
  if (isCallback(consentPage.url)) return consentPage.url; // consent remembered
  if (!/Autoriser/.test(consentPage.body)) throw new Error('expected the consent page');
  const cb = await browse(jar, formAction(consentPage.body, consentPage.url, /Autoriser/), { method: 'POST', form: {} }, isCallback);
  if (!isCallback(cb.url)) throw new Error(`expected the callback, got ${cb.url} ${cb.status} ${cb.body.slice(0, 200)}`);
  return cb.url;
}

t.test('full login: PSC pages → callback → session holding the clinician and a PSC access token', async (t) => {
  const ctx = await setup(t);
  const jar = new CookieJar();

  const login = await fetch(`${ctx.base}/auth/login?returnTo=%2Fviewer`, { redirect: 'manual' });
  t.equal(login.status, 302);
  const authUrl = new URL(login.headers.get('location')!);
  t.equal(authUrl.origin, ctx.sim.issuer, 'redirects to PSC');
  t.equal(authUrl.searchParams.get('code_challenge_method'), 'S256', 'PKCE');
  t.ok(authUrl.searchParams.get('code_challenge'));
  t.ok(authUrl.searchParams.get('state'));
  t.ok(authUrl.searchParams.get('nonce'));
  t.equal(authUrl.searchParams.get('acr_values'), 'eidas1');
  t.equal(authUrl.searchParams.get('scope'), 'openid scope_all');

  const loginPage = await browse(jar, `${ctx.base}/auth/login?returnTo=${encodeURIComponent('/viewer?study=1.2.3')}`);
  t.equal(loginPage.status, 200);
  t.match(loginPage.url, new RegExp(`^${ctx.sim.issuer}/interaction/`), 'lands on the simulator login page');
  t.match(loginPage.body, 'Marie Curie-Test');
  t.match(loginPage.body, `RPPS ${RPPS}`);

  const consent = await browse(jar, formAction(loginPage.body, loginPage.url, new RegExp(`value="${RPPS}"`)), { method: 'POST', form: { rpps: RPPS } });
  t.match(consent.body, /Autoriser/, 'consent page');
  const final = await browse(jar, formAction(consent.body, consent.url, /Autoriser/), { method: 'POST', form: {} });
  t.equal(final.url, `${ctx.base}/viewer?study=1.2.3`, 'back at returnTo');
  t.equal(final.status, 200);
  const shown = JSON.parse(final.body) as { clinician: { rpps: string; name: string; profession: { code: string; specialtyCode: string } } };
  t.equal(shown.clinician.rpps, RPPS);
  t.equal(shown.clinician.name, 'Marie Curie-Test');
  t.same(shown.clinician.profession, { code: '10', specialtyCode: 'SM44' });

  const sessionCookie = jar.setCookieLog.find((c) => c.startsWith('drimbox_session=') && !c.includes('Max-Age=0'));
  t.ok(sessionCookie, 'session cookie set');
  t.match(sessionCookie!, /; Path=\/;/);
  t.match(sessionCookie!, /HttpOnly/);
  t.match(sessionCookie!, /Secure/);
  t.match(sessionCookie!, /SameSite=Lax/);
  t.match(jar.get('drimbox_session')!, /^[A-Za-z0-9_-]{43}$/);

  const session = (await ctx.sessions.get(jar.get('drimbox_session')))!;
  t.equal(session.clinician.rpps, RPPS);
  t.ok(session.accessToken.length > 20, 'PSC access token kept');
  t.ok(session.accessTokenExpiresAt! > Date.now(), 'with its expiry');
  t.ok(session.idToken, 'ID token kept (for logout at PSC)');

  // The stored token is a real PSC token: a source box can introspect it.
  const introspector = new TokenIntrospector({ issuer: ctx.sim.issuer, clientId: 'box-source', clientSecret: 'source-secret' });
  const info = await introspector.introspect(session.accessToken);
  t.match(info, { active: true, rpps: RPPS, clientId: 'box-consumer', name: 'Marie Curie-Test' });

  const me = await fetch(`${ctx.base}/auth/me`, { headers: { cookie: jar.header(`${ctx.base}/auth/me`) } });
  t.match(await me.json(), { rpps: RPPS, name: 'Marie Curie-Test' });
});

t.test('an access token about to expire is renewed with the refresh token, once for concurrent requests', async (t) => {
  const ctx = await setup(t, { accessTokenTtlSeconds: 32 });
  const jar = new CookieJar();
  const final = await browse(jar, await loginUntilCallback(ctx, jar));
  t.equal(final.status, 200, 'logged in');
  const id = jar.get('drimbox_session')!;
  const first = (await ctx.sessions.get(id))!;
  t.ok(first.refreshToken, 'PSC gave a refresh token');
  // 32 s tokens are renewed 30 s before expiry: wait until this one is inside that window
  await new Promise((r) => setTimeout(r, Math.max(0, first.accessTokenExpiresAt! - 30_000 - Date.now()) + 200));
  const answers = await Promise.all(Array.from({ length: 5 }, () => fetch(`${ctx.base}/viewer`, { headers: { cookie: jar.header(`${ctx.base}/viewer`), accept: 'application/json' } })));
  t.same(answers.map((r) => r.status), [200, 200, 200, 200, 200], 'five requests arriving together all pass');
  const renewed = (await ctx.sessions.get(id))!;
  t.not(renewed.accessToken, first.accessToken, 'a new access token');
  t.ok(renewed.accessTokenExpiresAt! > first.accessTokenExpiresAt!, 'with a later expiry');
  const introspector = new TokenIntrospector({ issuer: ctx.sim.issuer, clientId: 'box-source', clientSecret: 'source-secret' });
  t.match(await introspector.introspect(renewed.accessToken), { active: true, rpps: RPPS }, 'a source box accepts the new token');

  // a refresh PSC refuses (revoked, expired) ends the session for the gateway: log in again
  await ctx.sessions.updateTokens(id, { accessToken: renewed.accessToken, accessTokenExpiresAt: Date.now() + 1000, refreshToken: 'revoked-or-unknown' });
  const refused = await fetch(`${ctx.base}/viewer`, { headers: { cookie: jar.header(`${ctx.base}/viewer`), accept: 'application/json' } });
  t.equal(refused.status, 401, 'refused renewal → 401, the viewer asks for a new login');
  const html = await fetch(`${ctx.base}/viewer`, { headers: { cookie: jar.header(`${ctx.base}/viewer`), accept: 'text/html' }, redirect: 'manual' });
  t.match(html.headers.get('location'), /^\/auth\/login\?returnTo=/, 'a browser is sent to the PSC login');
});

t.test('state and PKCE are enforced', async (t) => {
  const ctx = await setup(t);

  // Tampered state → 400, no session.
  const jar = new CookieJar();
  const cb = new URL(await loginUntilCallback(ctx, jar));
  t.ok(cb.searchParams.get('code'));
  cb.searchParams.set('state', 'tampered');
  const res = await browse(jar, cb.href);
  t.equal(res.status, 400);
  t.match(res.headers.get('content-type'), /application\/problem\+json/);
  t.equal(jar.get('drimbox_session'), undefined, 'no session');

  // A code replayed into another login (right state, other PKCE verifier) → refused at PSC → 400.
  const jar2 = new CookieJar();
  const stolen = new URL(await loginUntilCallback(ctx, jar2));
  const jar3 = new CookieJar();
  const start = await fetch(`${ctx.base}/auth/login`, { redirect: 'manual' });
  jar3.store(start);
  const otherState = new URL(start.headers.get('location')!).searchParams.get('state')!;
  stolen.searchParams.set('state', otherState);
  const replay = await browse(jar3, stolen.href);
  t.equal(replay.status, 400, 'code bound to its PKCE verifier');
  t.equal(jar3.get('drimbox_session'), undefined);

  // Callback without a login in progress → 400.
  const orphan = await fetch(`${ctx.base}/auth/callback?code=x&state=y`);
  t.equal(orphan.status, 400);

  // PSC itself refuses an authorization request without PKCE.
  const noPkce = new URL(`${ctx.sim.issuer}/auth`);
  noPkce.search = new URLSearchParams({ client_id: 'box-consumer', response_type: 'code', scope: 'openid', redirect_uri: `${ctx.base}/auth/callback`, state: 's' }).toString();
  const r = await fetch(noPkce, { redirect: 'manual' });
  const errUrl = new URL(r.headers.get('location') ?? `${ctx.base}/`);
  t.equal(errUrl.searchParams.get('error'), 'invalid_request');
  t.match(errUrl.searchParams.get("error_description"), /PKCE/);
});

t.test('open redirect refused: after a real login, returnTo only ever lands on the box itself', async (t) => {
  const ctx = await setup(t);
  // each resolves, in a browser, to another host unless the box rewrites it
  const attacks = [
    '//evil.example/steal', '/.//evil.example/phish', '/..//evil.example/phish', '/%2e//evil.example/phish', '/%2E%2E//evil.example/phish',
    '/././/evil.example/phish', '/\\evil.example/phish', '/\\\\evil.example/phish', '/./\\evil.example/phish', '/.\\/evil.example/phish',
    '/\t/evil.example/phish', '/\n/evil.example/phish', '/\r\n/evil.example/phish', '/.\t//evil.example/phish', 'https://evil.example/phish',
    'http:evil.example', '\\\\evil.example', ' //evil.example', '/%2e%2e/%2e%2e//evil.example/phish',
  ];
  for (const returnTo of attacks) {
    const jar = new CookieJar();
    const cb = await loginUntilCallback(ctx, jar, returnTo);
    const res = await fetch(cb, { redirect: 'manual', headers: { cookie: jar.header(cb) } });
    t.equal(res.status, 303, `${JSON.stringify(returnTo)}: logged in`);
    const location = res.headers.get('location')!;
    t.equal(new URL(location, cb).origin, ctx.base, `${JSON.stringify(returnTo)} → ${JSON.stringify(location)} stays on the box`);
  }
  // a genuine deep link survives the login unchanged
  const jar = new CookieJar();
  const cb = await loginUntilCallback(ctx, jar, '/viewer/?session=abc#series=2');
  const res = await fetch(cb, { redirect: 'manual', headers: { cookie: jar.header(cb) } });
  t.equal(res.headers.get('location'), '/viewer/?session=abc#series=2');
});

t.test('unauthenticated access and logout', async (t) => {
  const ctx = await setup(t);
  const api = await fetch(`${ctx.base}/viewer`, { headers: { accept: 'application/json' } });
  t.equal(api.status, 401, 'API call without session');
  t.match(api.headers.get('content-type'), /application\/problem\+json/);
  const browser = await fetch(`${ctx.base}/viewer?study=9`, { headers: { accept: 'text/html' }, redirect: 'manual' });
  t.equal(browser.status, 302, 'browser sent to login');
  t.equal(browser.headers.get('location'), `/auth/login?returnTo=${encodeURIComponent('/viewer?study=9')}`);

  const jar = new CookieJar();
  const cb = await loginUntilCallback(ctx, jar);
  await browse(jar, cb);
  const id = jar.get('drimbox_session')!;
  t.ok(await ctx.sessions.get(id), 'logged in');

  const out = await fetch(`${ctx.base}/auth/logout`, { method: 'POST', headers: { cookie: `drimbox_session=${id}` } });
  t.equal(out.status, 200, 'a script is told where to send the browser');
  t.match(((await out.json()) as { redirect: string }).redirect, `${ctx.sim.issuer}/session/end?`, 'PSC ends its session too');
  t.match(out.headers.getSetCookie().join('\n'), /drimbox_session=; Path=\/; HttpOnly; Secure; SameSite=Lax; Max-Age=0/);
  t.equal(await ctx.sessions.get(id), undefined, 'session deleted server-side');
  const after = await fetch(`${ctx.base}/viewer`, { headers: { cookie: `drimbox_session=${id}`, accept: 'application/json' } });
  t.equal(after.status, 401, 'old cookie no longer works');
});

t.test('idle expiry ends the session for the gateway routes', async (t) => {
  const gwPort = await freePort();
  const base = `http://127.0.0.1:${gwPort}`;
  const sim = await startPscSimulator({ clients: [{ client_id: 'box', client_secret: 'box-secret', redirect_uris: [`${base}/auth/callback`] }] });
  const db = await openStore('sqlite::memory:');
  let clock = Date.now();
  const sessions = new SessionStore(db.db, { idleTimeoutMs: 60_000, absoluteTimeoutMs: 120_000, now: () => clock });
  const app = Fastify();
  await app.register(pscLoginPlugin, { issuer: sim.issuer, clientId: 'box', clientSecret: 'box-secret', redirectUri: `${base}/auth/callback`, sessions });
  app.get('/viewer', { preHandler: requireClinician }, async (req) => ({ rpps: req.clinicianSession!.clinician.rpps }));
  await app.listen({ port: gwPort, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    await sim.close();
    await db.close();
  });
  const ctx = { sim, app, base, sessions };
  const jar = new CookieJar();
  const first = await browse(jar, await loginUntilCallback(ctx, jar));
  t.equal(first.status, 200);
  const get = () => fetch(`${base}/viewer`, { headers: { cookie: jar.header(`${base}/viewer`), accept: 'application/json' } });
  clock += 59_000;
  t.equal((await get()).status, 200, 'used before the idle timeout');
  clock += 59_000;
  t.equal((await get()).status, 200, 'activity renews the idle window');
  clock += 3_000;
  t.equal((await get()).status, 401, 'absolute expiry reached');
  const jar2 = new CookieJar();
  await browse(jar2, await loginUntilCallback(ctx, jar2));
  clock += 60_001;
  t.equal((await fetch(`${base}/viewer`, { headers: { cookie: jar2.header(`${base}/viewer`), accept: 'application/json' } })).status, 401, 'idle expiry');
});

t.test('cancelling at PSC ends on a clear 400, without a session', async (t) => {
  const ctx = await setup(t);
  const jar = new CookieJar();
  const loginPage = await browse(jar, `${ctx.base}/auth/login`);
  const back = await browse(jar, formAction(loginPage.body, loginPage.url, /Annuler/), { method: 'POST', form: {} });
  t.match(back.url, `${ctx.base}/auth/callback?error=access_denied`);
  t.equal(back.status, 400);
  t.match(JSON.parse(back.body), { title: 'Login failed', detail: 'access_denied' });
  t.equal(jar.get('drimbox_session'), undefined);
});
