// The clinician's side of a real consumer box (its own HTTPS listener and public URL, the PSC
// simulator, the DMP simulator), attacked as a browser would be: open redirect after login,
// cross-site contextual calls (CSRF), logout that must end the PSC session, PSC tokens at rest,
// security headers.
import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Agent } from 'undici';
import { startPscSimulator, type PscSimulator } from '../../sandbox/psc/index.js';
import { startDmpSimulator, type DmpSimulator } from '../../sandbox/dmp/simulator.js';
import { startBox, type Box } from '../../gateway/src/box.js';
import { createLogger } from '../../gateway/src/log.js';
import { trustLayer } from '../../gateway/src/trust/layer.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createConsumerRole } from '../../gateway/src/consumer/role.js';
import { testBoxConfig, mtlsAgent, sqliteOf } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { dmpTestPki } from '../helpers/dmp-pki.js';
import { freePort } from '../helpers/ports.js';
import { callForm } from '../helpers/network.js';
import { CookieJar } from '../helpers/cookie-jar.js';

const SECRET = 'box-b-secret-0123456789';
const DPI = 'https://dpi.hopital.test';

let psc: PscSimulator;
let dmp: DmpSimulator;
let box: Box;
let base: string;
let agent: Agent;

t.before(async () => {
  const pki = await testPki();
  const port = await freePort();
  base = `https://127.0.0.1:${port}`;
  psc = await startPscSimulator({ clients: [{ client_id: 'box-b', client_secret: SECRET, redirect_uris: [`${base}/auth/callback`] }] });
  const dmpPki = await dmpTestPki();
  dmp = await startDmpSimulator({
    dataDir: mkdtempSync(join(tmpdir(), 'dmp-sim-')),
    tls: { cert: dmpPki.server.cert, key: dmpPki.server.key, ca: [readFileSync(pki.ca.cert, 'utf8')] },
    vihfTrustAnchors: [readFileSync(pki.ca.cert, 'utf8')],
  });
  const dmpCa = join(mkdtempSync(join(tmpdir(), 'dmp-ca-')), 'dmp-ca.pem');
  writeFileSync(dmpCa, dmpPki.caPem);
  const id = pki.boxes['box-b'];
  const cfg = await testBoxConfig({
    name: 'box-b', pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'box-b-pacs-')) }, allowedPeers: [],
    extra: {
      roles: ['consumer'],
      user: { port: 1, publicUrl: base, tls: { cert: id.chain, key: id.key }, allowedCallOrigins: [DPI] },
      psc: { issuer: psc.issuer, clientId: 'box-b', clientSecret: SECRET, introspectionCacheMs: 0 },
      dmp: { registryUrl: dmp.registryUrl, repositoryUrl: dmp.repositoryUrl, ca: dmpCa, finess: '101235555', sourceId: '1.2.250.1.999.1.1.8121', timeoutMs: 10_000 },
    },
  });
  cfg.user.port = port;
  box = await startBox(cfg, { logger: createLogger(cfg.log.level, 'box-b'), plugins: [trustLayer, dmpService, createConsumerRole()] });
  agent = await mtlsAgent();
});
t.teardown(async () => {
  await box?.close();
  await agent?.close();
  await dmp?.close();
  await psc?.close();
});

interface Page { status: number; url: string; body: string; headers: Record<string, string | string[] | undefined> }

/** One request as a browser makes it (cookies, Origin on POST); follows redirects unless `stopAt` says stop. */
async function browse(jar: CookieJar, url: string, o: { method?: string; form?: Record<string, string>; origin?: string | null; accept?: string; stopAt?: (u: string) => boolean } = {}): Promise<Page> {
  let method = o.method ?? (o.form ? 'POST' : 'GET');
  let body = o.form ? new URLSearchParams(o.form).toString() : undefined;
  for (let hops = 0; hops < 20; hops++) {
    const headers: Record<string, string> = { accept: o.accept ?? 'text/html' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (method === 'POST') {
      const origin = o.origin === undefined ? new URL(url).origin : o.origin;
      if (origin) headers.origin = origin;
    }
    const r = await request(url, { method: method as 'GET', headers, body, dispatcher: agent });
    jar.store(r.headers['set-cookie']);
    const location = r.headers.location;
    if (r.statusCode >= 300 && r.statusCode < 400 && typeof location === 'string') {
      await r.body.dump();
      const next = new URL(location, url).href;
      if (o.stopAt?.(next)) return { status: r.statusCode, url: next, body: '', headers: r.headers };
      if (r.statusCode === 303 || method === 'POST') { method = 'GET'; body = undefined; }
      o = { ...o, origin: undefined };
      url = next;
      continue;
    }
    return { status: r.statusCode, url, body: await r.body.text(), headers: r.headers };
  }
  throw new Error('too many redirects');
}

function form(html: string, pageUrl: string, marker: RegExp): { action: string; fields: Record<string, string> } {
  const f = [...html.matchAll(/<form[^>]* action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)].find((m) => marker.test(m[0]));
  if (!f) throw new Error(`no form matching ${marker} in ${html.slice(0, 300)}`);
  const fields = Object.fromEntries([...f[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2].replace(/&amp;/g, '&')]));
  return { action: new URL(f[1].replace(/&amp;/g, '&'), pageUrl).href, fields };
}

const isCallback = (u: string) => u.startsWith(`${base}/auth/callback`);

/** A real PSC login on the box (simulator pages) up to the callback; returns the callback URL, not yet followed. */
async function loginUntilCallback(jar: CookieJar, returnTo = '/'): Promise<string> {
  const login = await browse(jar, `${base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, { stopAt: isCallback });
  if (isCallback(login.url)) return login.url; // PSC session still open: straight back
  const rpps = psc.clinicians[0].rpps;
  const pick = form(login.body, login.url, new RegExp(`value="${rpps}"`));
  const consent = await browse(jar, pick.action, { form: pick.fields, origin: psc.issuer, stopAt: isCallback });
  if (isCallback(consent.url)) return consent.url;
  const ok = form(consent.body, consent.url, /Autoriser/);
  const cb = await browse(jar, ok.action, { form: ok.fields, origin: psc.issuer, stopAt: isCallback });
  if (!isCallback(cb.url)) throw new Error(`expected the callback, got ${cb.url} ${cb.status}`);
  return cb.url;
}

async function loggedIn(): Promise<CookieJar> {
  const jar = new CookieJar();
  await browse(jar, await loginUntilCallback(jar), { stopAt: () => true });
  if (!jar.get('drimbox_session')) throw new Error('no session after login');
  return jar;
}

const callAudits = async () => (await box.audit.recent(200)).filter((r) => r.route === '/contextual-call' && r.actor_rpps);

t.test('returnTo after a real login on the box never leaves it', async (t) => {
  for (const returnTo of ['/.//evil.example/phish', '/..//evil.example/phish', '/%2e//evil.example/phish', '/\\evil.example', '/\t/evil.example']) {
    const jar = new CookieJar();
    const cb = await loginUntilCallback(jar, returnTo);
    const back = await browse(jar, cb, { stopAt: () => true });
    t.equal(new URL(back.url).origin, base, `${JSON.stringify(returnTo)} → ${back.url}`);
  }
});

t.test('a contextual call from an unlisted or missing origin stops at an interstitial; only its confirmation searches', async (t) => {
  const jar = await loggedIn();
  const before = (await callAudits()).length;
  const viewerSessions = () => sqliteOf(box).prepare('SELECT COUNT(*) AS n FROM consumer_calls').get() as { n: number };
  const sessionsBefore = viewerSessions().n;

  // a page on another site posts the call (the browser adds Origin; a cross-site POST carries no Lax cookie)
  const cookie = jar.header(`${base}/contextual-call`);
  const cross = await browse(new CookieJar(), `${base}/contextual-call`, { form: callForm(), origin: 'https://evil.example', stopAt: () => true });
  t.equal(cross.status, 303);
  t.match(cross.url, `${base}/contextual-call/confirm/`, 'parked for confirmation');
  const page = await browse(jar, cross.url);
  t.equal(page.status, 200, 'the top-level GET (with the session cookie) shows the interstitial');
  t.match(page.body, /DUPONT MARIE ANNE/, 'naming the patient');
  t.match(page.body, /279035121518989/, 'and the INS');
  t.match(page.body, /evil\.example/, 'and who asked');
  t.match(String(page.headers['content-security-policy']), /form-action 'self'/);
  t.equal((await callAudits()).length, before, 'nothing audited under the clinician before the confirmation');
  t.equal(viewerSessions().n, sessionsBefore, 'no viewer session opened');

  // no Origin at all (a script, an old client), even with the session cookie: the same interstitial
  const bare = await request(`${base}/contextual-call`, { method: 'POST', dispatcher: agent, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: new URLSearchParams(callForm()).toString() });
  await bare.body.dump();
  t.equal(bare.statusCode, 303);
  t.match(String(bare.headers.location), /^\/contextual-call\/confirm\//, 'no Origin: confirmation needed');
  t.equal((await callAudits()).length, before);

  // the resume path cannot be used to skip the interstitial
  const pid = cross.url.split('/').pop()!;
  const skip = await browse(jar, `${base}/contextual-call/resume/${pid}`, { stopAt: () => true });
  t.match(skip.url, /\/contextual-call\/(confirm\/|resume\/)/, 'resume of an unconfirmed call leads back to confirmation');
  t.notMatch(skip.url, /\/viewer\//);

  // the confirmation is bound to this session and posted from the box's own page
  const confirm = form(page.body, page.url, /Ouvrir le dossier/);
  const other = await loggedIn();
  const stolen = await browse(other, confirm.action, { form: confirm.fields, stopAt: () => true });
  t.equal(stolen.status, 403, "another clinician's session cannot use the token");
  const forged = await browse(jar, confirm.action, { form: { ...confirm.fields, token: 'x'.repeat(43) }, stopAt: () => true });
  t.equal(forged.status, 403, 'a forged token is refused');
  const crossConfirm = await browse(jar, confirm.action, { form: confirm.fields, origin: 'https://evil.example', stopAt: () => true });
  t.equal(crossConfirm.status, 403, 'a confirmation posted from another site is refused');
  t.equal((await callAudits()).length, before, 'still nothing searched');

  const ok = await browse(jar, confirm.action, { form: confirm.fields, stopAt: (u) => u.includes('/viewer/') });
  t.match(ok.url, `${base}/viewer/?session=`, 'confirmed: the viewer opens');
  const rows = await callAudits();
  t.equal(rows.length, before + 1, 'one DMP search audited, under the clinician who confirmed');
  t.equal(rows[0].actor_rpps, psc.clinicians[0].rpps);
  const replay = await browse(jar, confirm.action, { form: confirm.fields, stopAt: () => true });
  t.ok(replay.status === 403 || replay.status === 404, `the token is single use (${replay.status})`);
});

t.test('a call from a listed DPI origin, or from the box itself, opens at once', async (t) => {
  const jar = await loggedIn();
  for (const origin of [DPI, base]) {
    const r = await browse(jar, `${base}/contextual-call`, { form: callForm(), origin, stopAt: (u) => u.includes('/viewer/') || u.includes('/confirm/') });
    t.match(r.url, `${base}/viewer/?session=`, `${origin}: straight to the viewer`);
  }
});

t.test('logout ends the PSC session too: the next call asks the clinician to log in again', async (t) => {
  const jar = await loggedIn();
  const idToken = (await box.services.sessions!.get(jar.get('drimbox_session')))!.idToken!;
  const out = await browse(jar, `${base}/auth/logout`, { method: 'POST', stopAt: (u) => u.startsWith(psc.issuer) });
  t.equal(out.status, 303);
  const end = new URL(out.url);
  t.equal(end.origin + end.pathname, `${psc.issuer}/session/end`, 'sent to the PSC end_session_endpoint');
  t.equal(end.searchParams.get('id_token_hint'), idToken, 'with the ID token as hint');
  t.equal(end.searchParams.get('post_logout_redirect_uri'), `${base}/auth/logged-out`);
  t.equal(jar.get('drimbox_session'), undefined, 'box session cookie cleared');
  const confirmPage = await browse(jar, out.url);
  const f = form(confirmPage.body, confirmPage.url, /Se déconnecter/);
  const done = await browse(jar, f.action, { form: { ...f.fields, logout: 'yes' }, origin: psc.issuer });
  t.equal(done.url, `${base}/auth/logged-out`, 'PSC sends the browser back to the box');
  t.equal(done.status, 200);

  // the DPI posts the next call: parked, then PSC must show its login page again
  const call = await browse(jar, `${base}/contextual-call`, { form: callForm(), origin: DPI, stopAt: (u) => u.startsWith(psc.issuer) || isCallback(u) || u.includes('/viewer/') });
  t.ok(call.url.startsWith(psc.issuer), `the call goes to PSC, not straight back in (${call.url})`);
  const atPsc = await browse(jar, call.url, { stopAt: (u) => isCallback(u) });
  t.notOk(isCallback(atPsc.url), 'PSC does not hand out a code without a new login');
  t.match(atPsc.body, /connexion/, 'the PSC login page');

  // a script (the viewer) gets the URL to navigate to
  const jar2 = await loggedIn();
  const api = await request(`${base}/auth/logout`, { method: 'POST', dispatcher: agent, headers: { cookie: jar2.header(`${base}/auth/logout`), accept: 'application/json', origin: base } });
  t.equal(api.statusCode, 200);
  t.match(((await api.body.json()) as { redirect: string }).redirect, `${psc.issuer}/session/end?`);
});

t.test('PSC tokens are not in the database file in clear', async (t) => {
  const jar = await loggedIn();
  const s = (await box.services.sessions!.get(jar.get('drimbox_session')))!;
  t.ok(s.accessToken && s.refreshToken && s.idToken, 'the session holds all three tokens');
  sqliteOf(box).pragma('wal_checkpoint(TRUNCATE)');
  const dir = box.config.dataDir;
  const files = readdirSync(dir).filter((f) => f.startsWith('drimbox.db'));
  const bytes = Buffer.concat(files.map((f) => readFileSync(join(dir, f))));
  t.ok(bytes.length > 0);
  for (const [kind, token] of [['access', s.accessToken], ['refresh', s.refreshToken!], ['id', s.idToken!]] as const) {
    t.equal(bytes.indexOf(Buffer.from(token)), -1, `${kind} token not stored in clear`);
  }
  const key = statSync(join(dir, 'psc-token.key'));
  t.equal(key.mode & 0o777, 0o600, 'the token key file is private to the box');
});

t.test('security headers on every listener; box pages keep their own CSP', async (t) => {
  const r = await request(`${base}/auth/logged-out`, { dispatcher: agent });
  await r.body.dump();
  t.match(String(r.headers['strict-transport-security']), /max-age=\d+/);
  t.equal(r.headers['x-content-type-options'], 'nosniff');
  t.equal(r.headers['referrer-policy'], 'same-origin', 'nothing leaks to other sites, and same-origin form posts keep their Origin');
  t.equal(r.headers['x-frame-options'], 'SAMEORIGIN');
  t.match(String(r.headers['content-security-policy']), /default-src 'none'/);
  t.match(String(r.headers['content-security-policy']), /sandbox/);
  const peer = await request(`${box.peerUrl}/dicom-web/studies`, { dispatcher: agent });
  await peer.body.dump();
  t.match(String(peer.headers['strict-transport-security']), /max-age=\d+/, 'the peer listener too');
  t.equal(peer.headers['x-content-type-options'], 'nosniff');
});

t.test('health names each dependency: a consumer without an allow-list is not healthy', async (t) => {
  const h = await request(`${base}/healthz/dependencies`, { dispatcher: agent });
  const body = await h.body.json() as { status: string; checks: { name: string; state: string; essential: boolean }[] };
  const by = Object.fromEntries(body.checks.map((c) => [c.name, c]));
  t.match(by, { pacs: { state: 'ok' }, psc: { state: 'ok', essential: true }, dmp: { state: 'ok', essential: true }, 'allow-list': { state: 'down', essential: true } });
  t.equal(h.statusCode, 503, 'a consumer without an allow-list can call no source box: not healthy');
});
