// Token introspection at the PSC simulator, as a source box does for each peer request.
import t from 'tap';
import { startPscSimulator } from '../../sandbox/psc/index.js';
import { TokenIntrospector } from '../../gateway/src/trust/introspection.js';

const RPPS = '10001234567';
const INTROSPECT = '/token/introspection';

const sim = await startPscSimulator({
  clients: [
    { client_id: 'box-source', client_secret: 'source-secret', redirect_uris: ['http://127.0.0.1:1/cb'] },
    { client_id: 'box-consumer', client_secret: 'consumer-secret', redirect_uris: ['http://127.0.0.1:1/cb'] },
  ],
});
t.teardown(() => sim.close());

const introspector = (extra: Partial<ConstructorParameters<typeof TokenIntrospector>[0]> = {}) =>
  new TokenIntrospector({ issuer: sim.issuer, clientId: 'box-source', clientSecret: 'source-secret', timeoutMs: 5000, ...extra });

t.test('a valid token is active with the clinician RPPS', async (t) => {
  const token = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-consumer', ttlSeconds: 300 });
  const r = await introspector().introspect(token);
  t.match(r, { active: true, rpps: RPPS, name: 'Marie Curie-Test', clientId: 'box-consumer', scope: 'openid scope_all' });
  if (r.active) {
    t.match(r.sub, /:810001234567$/);
    t.ok(r.exp > Date.now() / 1000 + 200 && r.exp <= Date.now() / 1000 + 301, 'exp from the token TTL');
  }
  const other = await introspector().introspect(await sim.issueAccessToken({ rpps: '10009876543', clientId: 'box-consumer' }));
  t.match(other, { active: true, rpps: '10009876543', name: 'Jean Laennec-Test' });
});

t.test('expired, revoked and garbage tokens are inactive', async (t) => {
  const short = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-consumer', ttlSeconds: 1 });
  const cached = introspector(); // with its 60 s cache: must still not outlive the token
  t.match(await cached.introspect(short), { active: true });
  await new Promise((r) => setTimeout(r, 1600));
  t.match(await cached.introspect(short), { active: false, reason: 'inactive' }, 'cache never beyond exp');
  t.match(await introspector().introspect(short), { active: false }, 'expired at PSC');

  const revoked = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-consumer' });
  await sim.revokeAccessToken(revoked);
  t.match(await introspector().introspect(revoked), { active: false, reason: 'inactive' });

  const i = introspector();
  t.match(await i.introspect('not-a-token'), { active: false, reason: 'inactive' });
  t.match(await i.introspect('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'), { active: false, reason: 'inactive' }, 'a forged JWT');
  t.match(await i.introspect(''), { active: false, reason: 'malformed' });
});

t.test('audience: a token meant for another client is rejected when expectedAudience is set', async (t) => {
  const forConsumer = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-consumer' });
  const forSource = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-source' });
  const strict = introspector({ expectedAudience: 'box-source' });
  t.match(await strict.introspect(forConsumer), { active: false, reason: 'wrong-audience' });
  t.match(await strict.introspect(forSource), { active: true, rpps: RPPS, clientId: 'box-source' });

  const elsewhere = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-source', audience: 'https://other-box.example' });
  t.match(await strict.introspect(elsewhere), { active: false, reason: 'wrong-audience' }, 'aud names another resource');
  const aimed = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-consumer', audience: ['box-source', 'https://x.example'] });
  t.match(await strict.introspect(aimed), { active: true, aud: ['box-source', 'https://x.example'] }, 'aud names us');
  t.match(await introspector().introspect(forConsumer), { active: true, clientId: 'box-consumer' }, 'without expectedAudience the caller sees client_id');
});

t.test('bad client credentials: PSC refuses, reported as unavailable (not cached)', async (t) => {
  const token = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-consumer' });
  const bad = introspector({ clientSecret: 'wrong' });
  t.match(await bad.introspect(token), { active: false, reason: 'unavailable' });
  t.match(await bad.introspect(token), { active: false, reason: 'unavailable' });
  t.equal(bad.httpCalls, 2, 'failures are retried, not cached');
  const down = new TokenIntrospector({ introspectionEndpoint: 'http://127.0.0.1:1/introspect', clientId: 'a', clientSecret: 'b', timeoutMs: 1000 });
  t.match(await down.introspect(token), { active: false, reason: 'unavailable' });
});

t.test('cache: a second introspection does not call PSC; cost cached vs uncached', async (t) => {
  const token = await sim.issueAccessToken({ rpps: RPPS, clientId: 'box-consumer' });
  const i = introspector({ introspectionEndpoint: `${sim.issuer}${INTROSPECT}` });
  const before = sim.requestCount(INTROSPECT);
  t.match(await i.introspect(token), { active: true });
  t.equal(sim.requestCount(INTROSPECT), before + 1);
  t.match(await i.introspect(token), { active: true, rpps: RPPS });
  t.equal(sim.requestCount(INTROSPECT), before + 1, 'cache hit: no second request to PSC');
  t.equal(i.httpCalls, 1);
  const garbage = 'garbage-token';
  await i.introspect(garbage);
  await i.introspect(garbage);
  t.equal(sim.requestCount(INTROSPECT), before + 2, 'negative answers are cached too');

  const N = 50;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const time = async (fn: () => Promise<unknown>) => {
    const t0 = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const uncachedI = introspector({ introspectionEndpoint: `${sim.issuer}${INTROSPECT}`, cacheTtlMs: 0 });
  await uncachedI.introspect(token); // warm the connection
  const uncached: number[] = [];
  for (let k = 0; k < N; k++) uncached.push(await time(() => uncachedI.introspect(token)));
  const cachedMs: number[] = [];
  for (let k = 0; k < N; k++) cachedMs.push(await time(() => i.introspect(token)));
  t.equal(uncachedI.httpCalls, N + 1, 'uncached: one PSC call each');
  const result = { metric: 'psc-introspect', calls: N, uncachedMedianMs: +median(uncached).toFixed(3), cachedMedianMs: +median(cachedMs).toFixed(4) };
  console.log(JSON.stringify(result));
  t.ok(result.cachedMedianMs < result.uncachedMedianMs, 'cache is faster than a PSC round trip');
});
