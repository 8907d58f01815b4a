// How the peer API answers what it cannot serve: a frame the instance does not have, repeated frames,
// an over-long URL, a PACS that refuses the box (HTTP 4xx) or hangs: each a clear status with
// application/problem+json, never a 500 nor an answer inflated by repeats.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { startOrthanc } from '../helpers/orthanc.js';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { sourceRole } from '../../gateway/src/source/role.js';
import { grantKos, withKos } from '../helpers/kos-grant.js';
import { multipartParts } from '../helpers/multipart.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import type { Box } from '../../gateway/src/box.js';

const FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
const PROBLEM = 'application/problem+json; charset=utf-8';

async function get(box: Box, path: string, dispatcher: Dispatcher, accept = FRAMES) {
  const r = await request(`${box.peerUrl}/dicom-web${path}`, { dispatcher, headers: { accept } });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, type: String(r.headers['content-type']), body, headers: r.headers };
}

t.test('frames: unknown frame → 404, repeats served once, over-long list → 414, all problem+json', async (t) => {
  const study = makeMgStudy({ size: [64, 48], seed: 7 });
  const orthanc = await startOrthanc({ gdcm: false });
  t.teardown(() => orthanc.stop());
  await orthanc.upload(study.files.map((f) => f.part10));
  const boxes: [string, Box][] = [
    ['Orthanc (DICOMweb)', await startTestBox({ pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl }, boxOptions: { plugins: [sourceRole] } })],
    ['folder', await startTestBox({ pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'frames-pacs-')) }, boxOptions: { plugins: [sourceRole] } })],
  ];
  await boxes[1][1].pacs.store((async function* () { for (const f of study.files) yield f.part10; })());
  const agent = await mtlsAgent((await testPki()).demoClient);
  t.teardown(async () => { for (const [, b] of boxes) await b.close(); await agent.close(); });
  const files = study.files.map((f) => f.part10);
  const inst = `/studies/${study.studyInstanceUid}/series/${study.seriesInstanceUid}/instances/${study.files[0].sopInstanceUid}`;

  for (const [name, box] of boxes) {
    const client = withKos(agent, await grantKos(box, files)); // the box serves what a current KOS grants
    const one = await get(box, `${inst}/frames/1`, client);
    t.equal(one.status, 200, `${name}: frame 1`);
    const frame = (await multipartParts(Readable.from([one.body]), one.type))[0].data;
    t.equal(frame.length, 64 * 48 * 2, `${name}: one native frame`);

    const missing = await get(box, `${inst}/frames/99999`, client);
    t.equal(missing.status, 404, `${name}: a frame the instance does not have is 404`);
    t.equal(missing.type, PROBLEM);
    t.match(JSON.parse(missing.body.toString()), { status: 404, title: 'Frame not found', detail: /frame 99999 does not exist: the instance has 1 frame/ });

    const repeated = await get(box, `${inst}/frames/${Array(256).fill(1).join(',')}`, client);
    t.equal(repeated.status, 200);
    const parts = await multipartParts(Readable.from([repeated.body]), repeated.type);
    t.equal(parts.length, 1, `${name}: 256 times frame 1 is answered with one frame`);
    t.ok(repeated.body.length < 2 * frame.length, `${name}: ${repeated.body.length} bytes, not 256 frames' worth`);

    const long = await get(box, `${inst}/frames/${Array(300).fill(1).join(',')}`, client);
    t.equal(long.status, 414, `${name}: an over-long frame list`);
    t.equal(long.type, PROBLEM, 'as problem+json, not Fastify\'s own JSON');
    t.match(JSON.parse(long.body.toString()), { status: 414, title: 'URI Too Long' });

    const bad = await get(box, `${inst}/frames/0,x`, client);
    t.equal(bad.status, 400);
    t.equal(bad.type, PROBLEM);
  }
});

t.test('a PACS that refuses the box (401) is 502; a PACS that hangs is 504', async (t) => {
  const orthanc = await startOrthanc({ gdcm: false, users: { drimbox: 'secret-of-the-pacs' } });
  t.teardown(() => orthanc.stop());
  const study = makeMgStudy({ size: [64, 48], seed: 8 });
  await orthanc.upload(study.files.map((f) => f.part10));
  // the box is configured without the PACS credentials: Orthanc answers 401 to everything
  const box = await startTestBox({ pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl, timeoutMs: 1500 }, boxOptions: { plugins: [sourceRole] } });
  t.teardown(() => box.close());
  const agent = await mtlsAgent((await testPki()).demoClient);
  t.teardown(() => agent.close());
  const files = study.files.map((f) => f.part10);
  const client = withKos(agent, await grantKos(box, files));

  for (const path of ['/studies', `/studies/${study.studyInstanceUid}/metadata`, `/studies/${study.studyInstanceUid}/series`]) {
    const r = await get(box, path, client, 'application/dicom+json');
    t.equal(r.status, 502, `${path}: the PACS refusing the box is a PACS failure`);
    t.equal(r.type, PROBLEM);
    t.match(JSON.parse(r.body.toString()), { status: 502, title: 'PACS unavailable' });
  }

  // a PACS that stops answering (SIGSTOP: the socket accepts, nothing comes back)
  const open = await startOrthanc({ gdcm: false });
  t.teardown(() => open.stop());
  const authed = await startTestBox({ pacs: { kind: 'dicomweb', url: open.dicomWebUrl, timeoutMs: 1500 }, boxOptions: { plugins: [sourceRole] } });
  t.teardown(() => authed.close());
  const authedClient = withKos(agent, await grantKos(authed, files));
  t.equal((await get(authed, '/studies', authedClient, 'application/dicom+json')).status, 200, 'an open PACS answers');
  open.proc.kill('SIGSTOP');
  try {
    const started = Date.now();
    const r = await get(authed, '/studies', authedClient, 'application/dicom+json');
    t.equal(r.status, 504, 'a PACS that does not answer in time is a gateway timeout');
    t.equal(r.type, PROBLEM);
    t.match(JSON.parse(r.body.toString()), { status: 504, title: 'PACS timeout' });
    t.ok(Date.now() - started < 10_000, 'within the configured timeout');
  } finally {
    open.proc.kill('SIGCONT');
  }
});

t.test('a DIMSE PACS that hangs is 504', async (t) => {
  const orthanc = await startOrthanc({ gdcm: false });
  t.teardown(() => orthanc.stop());
  const study = makeMgStudy({ size: [64, 48], seed: 10 });
  await orthanc.upload(study.files.map((f) => f.part10));
  const box = await startTestBox({ pacs: { kind: 'dimse', host: '127.0.0.1', port: orthanc.dicomPort, calledAet: orthanc.aet, timeoutMs: 1500 }, boxOptions: { plugins: [sourceRole] } });
  t.teardown(() => box.close());
  const agent = await mtlsAgent((await testPki()).demoClient);
  t.teardown(() => agent.close());
  const client = withKos(agent, await grantKos(box, study.files.map((f) => f.part10)));
  t.equal((await get(box, '/studies', client, 'application/dicom+json')).status, 200, 'C-FIND answers');
  orthanc.proc.kill('SIGSTOP');
  try {
    const r = await get(box, '/studies', client, 'application/dicom+json');
    t.equal(r.status, 504, 'no answer within pacs.timeoutMs');
    t.equal(r.type, PROBLEM);
    t.match(JSON.parse(r.body.toString()), { status: 504, title: 'PACS timeout' });
  } finally {
    orthanc.proc.kill('SIGCONT');
  }
});
