// Clinician identity from PSC claims, returnTo safety, cookies, and session expiry rules.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { openStore } from '../../gateway/src/store/database.js';
import { forEachStore } from '../helpers/stores.js';
import { clinicianFromPscClaims, rppsFromClaims, rppsFromNationalId } from '../../gateway/src/trust/psc-claims.js';
import { safeReturnTo } from '../../gateway/src/trust/psc-login.js';
import { SessionStore, readCookie, serializeCookie } from '../../gateway/src/trust/sessions.js';
import type { Clinician } from '../../gateway/src/trust/psc-claims.js';

t.test('RPPS from PSC national identifiers', async (t) => {
  t.equal(rppsFromNationalId('810001234567'), '10001234567');
  t.equal(rppsFromNationalId('10001234567'), undefined, 'bare RPPS is not a PSC national id');
  t.equal(rppsFromNationalId('ANS20231122132732'), undefined, 'EDIT test ids are not RPPS');
  t.equal(rppsFromNationalId('0123456789012'), undefined);
  t.equal(rppsFromClaims({ sub: 'f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:810009876543' }), '10009876543', 'falls back to sub');
});

t.test('clinician from PSC userinfo', async (t) => {
  const c = clinicianFromPscClaims({
    sub: 'f:x:810001234567',
    SubjectNameID: '810001234567',
    given_name: 'Marie',
    family_name: 'Curie-Test',
    SubjectRefPro: { exercices: [{ codeProfession: '10', codeSavoirFaire: 'SM44' }] },
  });
  t.same(c, {
    rpps: '10001234567',
    nationalId: '810001234567',
    sub: 'f:x:810001234567',
    givenName: 'Marie',
    familyName: 'Curie-Test',
    name: 'Marie Curie-Test',
    profession: { code: '10', specialtyCode: 'SM44' },
  });
  t.equal(clinicianFromPscClaims({ sub: 'f:x:ANS20231122132732', SubjectNameID: 'ANS20231122132732' }), undefined, 'no RPPS → no clinician');
});

t.test('returnTo only accepts same-origin relative paths', async (t) => {
  t.equal(safeReturnTo('/viewer?study=1.2.3#x'), '/viewer?study=1.2.3#x');
  for (const bad of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '', undefined, 42, '/\tx', 'viewer']) {
    t.equal(safeReturnTo(bad), '/', `rejects ${String(bad)}`);
  }
});

t.test('session cookie attributes and parsing', async (t) => {
  const c = serializeCookie('drimbox_session', 'abc', { maxAgeSeconds: 3600 });
  t.match(c, /^drimbox_session=abc; Path=\/; HttpOnly; Secure; SameSite=Lax; Max-Age=3600$/);
  t.equal(readCookie('a=1; drimbox_session=xyz; b=2', 'drimbox_session'), 'xyz');
  t.equal(readCookie('a=1', 'drimbox_session'), undefined);
  t.equal(readCookie(undefined, 'drimbox_session'), undefined);
});

const clinician: Clinician = { rpps: '10001234567', nationalId: '810001234567', sub: 's', name: 'Marie Curie-Test' };

forEachStore(t, 'sessions: idle expiry, absolute expiry, logout', async (t, box) => {
  let now = 1_000_000;
  const store = new SessionStore(box.db, { idleTimeoutMs: 10_000, absoluteTimeoutMs: 25_000, now: () => now });

  const s = await store.create(clinician, { accessToken: 'at-1', accessTokenExpiresAt: now + 5000 });
  t.match(s.id, /^[A-Za-z0-9_-]{43}$/, '256-bit random id');
  t.not((await store.create(clinician, { accessToken: 'x' })).id, s.id);
  t.equal((await box.db.selectFrom('sessions').select('id_hash').where('id_hash', '=', s.id).execute()).length, 0, 'the raw id is not stored');

  now += 9_000;
  t.equal((await store.get(s.id))?.clinician.rpps, '10001234567', 'used within the idle window');
  now += 9_000;
  const again = await store.get(s.id);
  t.equal(again?.accessToken, 'at-1', 'activity keeps it alive');
  t.equal(again?.accessTokenExpiresAt, 1_005_000);
  now += 9_000; // 27 s after creation: past the absolute expiry though active
  t.equal((await store.get(s.id)), undefined, 'absolute expiry');

  const idle = await store.create(clinician, { accessToken: 'at-2' });
  now += 10_000;
  t.equal((await store.get(idle.id)), undefined, 'idle expiry');

  const out = await store.create(clinician, { accessToken: 'at-3' });
  t.ok((await store.delete(out.id)));
  t.equal((await store.get(out.id)), undefined, 'logout deletes');
  t.equal((await store.get('not-a-session')), undefined);
  t.equal((await store.get(undefined)), undefined);

  await store.create(clinician, { accessToken: 'old' });
  now += 60_000;
  t.equal((await store.purgeExpired()), 1 + 1, 'purge drops what expired');
});

forEachStore(t, 'login transactions are single use and expire', async (t, box) => {
  let now = 0;
  const store = new SessionStore(box.db, { loginTimeoutMs: 1000, now: () => now });
  const tx = { state: 's', nonce: 'n', codeVerifier: 'v', returnTo: '/x' };
  const id = await store.beginLogin(tx);
  t.same((await store.takeLogin(id)), tx);
  t.equal((await store.takeLogin(id)), undefined, 'second use refused');
  const late = await store.beginLogin(tx);
  now += 1000;
  t.equal((await store.takeLogin(late)), undefined, 'expired');
});

forEachStore(t, 'a session opened on one instance is live on another sharing the database and token key', async (t, box, url) => {
  const other = box.dialect === 'postgres' ? await openStore(url) : box; // SQLite: one process
  if (other !== box) t.teardown(() => other.close());
  const tokenKey = randomBytes(32);
  const a = new SessionStore(box.db, { tokenKey });
  const b = new SessionStore(other.db, { tokenKey });
  const s = await a.create(clinician, { accessToken: 'at-shared', refreshToken: 'rt' });
  t.match(await b.get(s.id), { accessToken: 'at-shared', refreshToken: 'rt', clinician: { rpps: clinician.rpps } }, 'read by the other instance');
  await b.updateTokens(s.id, { accessToken: 'at-renewed' });
  t.equal((await a.get(s.id))?.accessToken, 'at-renewed', 'a renewal on one is seen by the other');
  const login = await a.beginLogin({ state: 's', nonce: 'n', codeVerifier: 'v', returnTo: '/' });
  const [x, y] = await Promise.all([a.takeLogin(login), b.takeLogin(login)]);
  t.equal([x, y].filter(Boolean).length, 1, 'a login callback replayed on two instances at once is taken once');
  t.equal(await new SessionStore(other.db, { tokenKey: randomBytes(32) }).get(s.id), undefined, 'an instance with another token key cannot use it');
});
