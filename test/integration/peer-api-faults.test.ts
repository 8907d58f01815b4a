// The peer API when the PACS fails: down before the request → 502 problem; dying mid-stream → the
// multipart answer is aborted (never a clean end that would look complete); the box keeps serving.
import t from 'tap';
import { request } from 'undici';
import { startOrthanc } from '../helpers/orthanc.js';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { sourceRole } from '../../gateway/src/source/role.js';
import { grantKos, withKos } from '../helpers/kos-grant.js';

t.test('PACS dying mid-stream aborts the answer; PACS down gives 502; the box keeps serving', async (t) => {
  const orthanc = await startOrthanc({ gdcm: false });
  t.teardown(() => orthanc.stop());
  const study = makeMgStudy({ size: [2400, 1900], seed: 9 });
  await orthanc.upload(study.files.map((f) => f.part10));
  const box = await startTestBox({ pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl }, boxOptions: { plugins: [sourceRole] } });
  t.teardown(() => box.close());
  const client = withKos(await mtlsAgent((await testPki()).demoClient), await grantKos(box, study.files.map((f) => f.part10)));

  const r = await request(`${box.peerUrl}/dicom-web/studies/${study.studyInstanceUid}`, {
    dispatcher: client,
    headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
  });
  t.equal(r.statusCode, 200);
  let received = 0;
  let killed = false;
  const outcome = await (async () => {
    try {
      for await (const chunk of r.body) {
        received += (chunk as Buffer).length;
        if (!killed && received > 2_000_000) {
          killed = true;
          orthanc.kill();
          await new Promise((res) => setTimeout(res, 200)); // let the box see the PACS die
        }
      }
      return 'ended';
    } catch (e) {
      return `aborted: ${(e as Error).message}`;
    }
  })();
  t.ok(killed, 'the PACS was killed while the answer streamed');
  t.match(outcome, /^aborted/, 'the client sees an error, not a complete body');
  t.ok(received < 4 * 2400 * 1900 * 2, 'less than the whole study arrived');

  const down = await request(`${box.peerUrl}/dicom-web/studies/${study.studyInstanceUid}`, { dispatcher: client, headers: { accept: '*/*' } });
  t.equal(down.statusCode, 502);
  t.equal(down.headers['content-type'], 'application/problem+json; charset=utf-8');
  t.match(await down.body.json(), { status: 502, title: 'PACS unavailable' });
  const q = await request(`${box.peerUrl}/dicom-web/studies`, { dispatcher: client });
  t.equal(q.statusCode, 502, 'QIDO also answers cleanly');
  await q.body.dump();

  const health = await request(`${box.userUrl}/healthz/dependencies`, { dispatcher: await mtlsAgent() });
  t.equal(health.statusCode, 503);
  t.match(await health.body.json(), { status: 'unhealthy', checks: [{ name: 'pacs', ok: false }] });
  const live = await request(`${box.userUrl}/healthz`, { dispatcher: await mtlsAgent() });
  t.equal(live.statusCode, 200, 'but /healthz (the load balancer\'s check) says this instance can still serve');
  t.match(await live.body.json(), { status: 'ok', checks: [{ name: 'database', state: 'ok' }, { name: 'listeners', state: 'ok' }] });
  const rows = (await box.audit.recent(10));
  t.ok(rows.some((row) => row.status === 502), 'failures are audited');
});
