// PeerAccess denies by default: without a scope guard (the source role's KOS guard) no peer request is
// authorized, whatever the caller's certificate and the other guards say.
import t from 'tap';
import type { FastifyRequest } from 'fastify';
import { PeerAccess } from '../../gateway/src/source/peer-access.js';
import { HttpProblem } from '../../gateway/src/http/problem.js';

const req = () => ({ headers: {} }) as unknown as FastifyRequest;

t.test('no scope guard: refused, even for a listed caller whose other guards pass', async (t) => {
  const access = new PeerAccess(() => true, () => 'CN=box-b,O=Centre box-b,C=FR').use(() => undefined);
  const r = access.authorize(req(), { level: 'query' });
  await t.rejects(r, HttpProblem);
  await t.rejects(access.authorize(req(), { level: 'study', study: '1.2.3' }), { name: 'HttpProblem', status: 403 } as never);
});

t.test('with a scope guard, it runs last and decides', async (t) => {
  const order: string[] = [];
  const access = new PeerAccess(() => true, () => 'CN=box-b,O=Centre box-b,C=FR')
    .useScope((_r, scope, p) => { order.push('scope'); if (scope.study !== '1.2.3') throw new HttpProblem(404, 'Not covered'); p.kosUid = '1.9'; })
    .use(() => { order.push('token'); });
  t.match(await access.authorize(req(), { level: 'study', study: '1.2.3' }), { dn: /box-b/, kosUid: '1.9' });
  t.same(order, ['token', 'scope']);
  await t.rejects(access.authorize(req(), { level: 'study', study: '1.2.4' }), { name: 'HttpProblem', status: 404 } as never);
});

t.test('an unlisted caller is refused before any guard runs', async (t) => {
  let ran = false;
  const access = new PeerAccess(() => false, () => 'CN=x,C=FR').useScope(() => { ran = true; });
  await t.rejects(access.authorize(req(), { level: 'query' }), { status: 403, title: 'Peer not allowed' } as never);
  t.notOk(ran);
});
