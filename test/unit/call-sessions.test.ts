// Viewer sessions, on SQLite and PostgreSQL alike: private to the clinician who made the call,
// expiring, and what is learnt about a study afterwards (withdrawn at its source) seen by every later
// request — through the parsed cache too, and on another instance sharing the database. Grants and
// parked calls (and the confirmation page's binding) are in the database too: any instance answers.
import t from 'tap';
import { forEachStore } from '../helpers/stores.js';
import type { Store } from '../../gateway/src/store/database.js';
import { CallSessionStore } from '../../gateway/src/consumer/call-sessions.js';
import type { SessionStudy } from '../../gateway/src/consumer/dmp-search.js';

const study = (uid: string): SessionStudy => ({
  studyUid: uid, date: '20240102', modalities: ['MR'], description: 'IRM', sourceCentre: 'Centre A', kosUid: `${uid}.9`,
  current: true, status: 'available', source: '1.2.3', series: [], patientIds: ['279035121518989'],
});

function sessions(store: Store) {
  let now = 1_000_000;
  const calls = new CallSessionStore(store, 60_000, () => now);
  return { calls, advance: (ms: number) => { now += ms; }, now: () => now };
}

const patient = { birthName: 'TEST', givenNames: ['ANNE'], birthDate: '19640312', sex: 'F' as const, ins: { value: '264036412345678', oid: '1.2.250.1.213.1.4.8' } };
const rpps = '10001234567';

forEachStore(t, 'a session belongs to its clinician and expires', async (t, store) => {
  const { calls, advance } = sessions(store);
  const c = await calls.create({ rpps, patient, clinician: { name: 'Marie Curie-Test', rpps }, studies: [study('1.2.1')] }, [{ id: 'doc-1', mediaType: 'text/plain', data: Buffer.from('compte rendu') }]);
  t.equal((await calls.get(c.id, rpps))?.studies[0].studyUid, '1.2.1', 'the clinician who made the call reads it');
  t.equal(await calls.get(c.id, '10009999999'), undefined, 'another clinician does not, even with the id');
  t.equal(await calls.get(`${c.id}x`, rpps), undefined, 'a wrong id finds nothing');
  t.equal((await calls.report(c.id, 'doc-1'))?.data.toString(), 'compte rendu', 'its report, bytes as stored');
  advance(60_001);
  t.equal(await calls.get(c.id, rpps), undefined, 'expired, even while kept parsed');
  await calls.purgeExpired();
  t.equal(await calls.report(c.id, 'doc-1'), undefined, 'purged with its reports');
});

forEachStore(t, 'a study withdrawn after the call is seen as withdrawn, from memory, the database and another instance', async (t, store) => {
  const { calls } = sessions(store);
  const other = new CallSessionStore(store, 60_000, () => 1_000_000); // a second instance on the same database
  const c = await calls.create({ rpps, patient, clinician: { name: 'M', rpps }, studies: [study('1.2.1'), study('1.2.2')] }, []);
  t.equal((await calls.get(c.id, rpps))?.studies[1].status, 'available');
  t.equal((await other.get(c.id, rpps))?.studies[1].status, 'available', 'the other instance has it parsed too');
  await calls.updateStudy(c.id, '1.2.2', { status: 'withdrawn', problem: 'gone' });
  t.same((await calls.get(c.id, rpps))?.studies.map((s) => s.status), ['available', 'withdrawn'], 'the next request sees it');
  t.same((await other.get(c.id, rpps))?.studies.map((s) => s.status), ['available', 'withdrawn'], 'so does the other instance, whatever it had parsed');
  await other.updateStudy(c.id, '1.2.1', { status: 'refused', problem: 'identité' });
  t.same((await calls.get(c.id, rpps))?.studies.map((s) => s.status), ['refused', 'withdrawn'], 'and back: neither change lost');
});

forEachStore(t, 'many sessions: each still reads back right once the parsed ones are evicted', async (t, store) => {
  const { calls } = sessions(store);
  const made = [];
  for (let i = 0; i < 50; i++) made.push(await calls.create({ rpps, patient, clinician: { name: 'M', rpps }, studies: [study(`1.2.${i}`)] }, []));
  for (const [i, c] of made.entries()) t.equal((await calls.get(c.id, rpps))?.studies[0].studyUid, `1.2.${i}`, `session ${i}`);
});

forEachStore(t, 'a grant one instance received is known to the others', async (t, store) => {
  const { calls } = sessions(store);
  const other = new CallSessionStore(store, 60_000, () => 1_000_000);
  const c = await calls.create({ rpps, patient, clinician: { name: 'M', rpps }, studies: [study('1.2.1')] }, []);
  t.equal(await other.grant(c.id, '1.2.1'), undefined, 'nothing granted yet');
  const series = [{ '0020000E': { vr: 'UI', Value: ['1.2.1.1'] } }];
  await calls.setGrant(c.id, '1.2.1', { at: 5_000, series });
  t.same(await other.grant(c.id, '1.2.1'), { at: 5_000, series }, 'the source\'s answer and its series rows');
  await other.setGrant(c.id, '1.2.1', { at: 6_000 });
  t.same(await calls.grant(c.id, '1.2.1'), { at: 6_000 }, 'renewed (served from the cache while the source was down)');
});

forEachStore(t, 'a parked call is taken once, anywhere; a confirmation only by its session with its token', async (t, store) => {
  const { calls, advance } = sessions(store);
  const other = new CallSessionStore(store, 60_000, () => 1_000_000);
  const p = await calls.park({ 'Patient.identifier.value': '279035121518989' });
  t.same(await other.unpark(p.id), { 'Patient.identifier.value': '279035121518989' }, 'resumed on another instance');
  t.equal(await calls.unpark(p.id), undefined, 'single use');

  const bound = await calls.park({ '#origin': 'https://evil.example' }, { confirmFor: 'session-hash-1' });
  t.ok(bound.token, 'a confirmation token for the page');
  t.equal(await other.unpark(bound.id, { sessionHash: 'session-hash-2', token: bound.token! }), 'refused', 'another clinician session: refused');
  t.equal(await other.unpark(bound.id, { sessionHash: 'session-hash-1', token: `${bound.token}x` }), 'refused', 'a wrong token: refused');
  t.same(await other.unpark(bound.id, { sessionHash: 'session-hash-1', token: bound.token! }), { '#origin': 'https://evil.example' }, 'its session and token, on any instance');
  t.equal(await calls.unpark(bound.id, { sessionHash: 'session-hash-1', token: bound.token! }), undefined, 'once');

  const late = await calls.park({ a: 'b' }, { ttlMs: 1000 });
  advance(1001);
  t.equal(await calls.unpark(late.id), undefined, 'expired');
});
