// Instances sharing PostgreSQL wake each other when work is queued (LISTEN/NOTIFY), so an idle
// instance does not wait for its next poll; on SQLite (one instance) notifying is harmless.
import t from 'tap';
import { openStore } from '../../gateway/src/store/database.js';
import { freshStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

t.test('a notification from one instance wakes the other, and only on its channel (postgres)', async (t) => {
  const { store: a, url } = await freshStore(t, 'postgres');
  const b = await openStore(url);
  t.teardown(() => b.close());
  let woken = 0, other = 0;
  const unlisten = await a.wakeups.listen('drimbox_publication', () => { woken++; });
  const unlistenOther = await a.wakeups.listen('drimbox_other', () => { other++; });
  const atStart = woken; // a listener looks once at what was queued before it listened
  await b.wakeups.notify('drimbox_publication');
  await waitFor(() => woken > atStart, 5000, 'the other instance woken');
  t.equal(other, 1, 'the other channel was not woken (only its own first look)');
  await unlisten();
  await unlistenOther();
  const after = woken;
  await b.wakeups.notify('drimbox_publication');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(woken, after, 'no wake-up after unlisten');
  await t.rejects(b.wakeups.notify('bad; DROP TABLE x'), /bad channel/, 'channel names are checked');
});

t.test('on SQLite, notifying and listening do nothing and do not fail', async (t) => {
  const { store } = await freshStore(t, 'sqlite');
  let woken = 0;
  const unlisten = await store.wakeups.listen('drimbox_publication', () => { woken++; });
  await store.wakeups.notify('drimbox_publication');
  await unlisten();
  t.equal(woken, 0);
});
