// Viewer sessions: private to the clinician who made the call, expiring, and what is learnt about a
// study afterwards (withdrawn at its source) seen by every later request — through the parsed cache too.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../gateway/src/store/db.js';
import { CallSessionStore } from '../../gateway/src/consumer/call-sessions.js';
import type { SessionStudy } from '../../gateway/src/consumer/dmp-search.js';

const study = (uid: string): SessionStudy => ({
  studyUid: uid, date: '20240102', modalities: ['MR'], description: 'IRM', sourceCentre: 'Centre A', kosUid: `${uid}.9`,
  current: true, status: 'available', source: '1.2.3', series: [], patientIds: ['279035121518989'],
});

function store() {
  const db = openDb(join(mkdtempSync(join(tmpdir(), 'call-sessions-')), 'db.sqlite'));
  let now = 1_000_000;
  const calls = new CallSessionStore(db, 60_000, () => now);
  return { db, calls, advance: (ms: number) => { now += ms; } };
}

const patient = { birthName: 'TEST', givenNames: ['ANNE'], birthDate: '19640312', sex: 'F' as const, ins: { value: '264036412345678', oid: '1.2.250.1.213.1.4.8' } };

t.test('a session belongs to its clinician and expires', async (t) => {
  const { calls, advance } = store();
  const c = calls.create({ rpps: '10001234567', patient, clinician: { name: 'Marie Curie-Test', rpps: '10001234567' }, studies: [study('1.2.1')] }, []);
  t.equal(calls.get(c.id, '10001234567')?.studies[0].studyUid, '1.2.1', 'the clinician who made the call reads it');
  t.equal(calls.get(c.id, '10009999999'), undefined, 'another clinician does not, even with the id');
  t.equal(calls.get(`${c.id}x`, '10001234567'), undefined, 'a wrong id finds nothing');
  advance(60_001);
  t.equal(calls.get(c.id, '10001234567'), undefined, 'expired, even while kept parsed');
});

t.test('a study withdrawn after the call is seen as withdrawn, from memory and from the database', async (t) => {
  const { db, calls } = store();
  const c = calls.create({ rpps: '10001234567', patient, clinician: { name: 'M', rpps: '10001234567' }, studies: [study('1.2.1'), study('1.2.2')] }, []);
  t.equal(calls.get(c.id, '10001234567')?.studies[1].status, 'available');
  calls.updateStudy(c.id, '1.2.2', { status: 'withdrawn', problem: 'gone' });
  t.same(calls.get(c.id, '10001234567')?.studies.map((s) => s.status), ['available', 'withdrawn'], 'the next request sees it');
  // a store with nothing parsed yet (as after a restart) reads the same from the database
  const fresh = new CallSessionStore(db, 60_000, () => 1_000_000);
  t.same(fresh.get(c.id, '10001234567')?.studies.map((s) => s.status), ['available', 'withdrawn'], 'stored');
});

t.test('many sessions: each still reads back right once the parsed ones are evicted', async (t) => {
  const { calls } = store();
  const made = Array.from({ length: 50 }, (_, i) => calls.create({ rpps: '10001234567', patient, clinician: { name: 'M', rpps: '10001234567' }, studies: [study(`1.2.${i}`)] }, []));
  for (const [i, c] of made.entries()) t.equal(calls.get(c.id, '10001234567')?.studies[0].studyUid, `1.2.${i}`, `session ${i}`);
});
