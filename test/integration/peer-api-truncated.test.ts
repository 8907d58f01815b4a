// A PACS file cut short must not be served as part of a complete answer: the source box checks each
// Part 10 part as it streams (meta group, element structure, announced length) and aborts the
// multipart (no closing delimiter) at the first part that fails, for a folder store and for Orthanc.
import t from 'tap';
import { readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { startOrthanc } from '../helpers/orthanc.js';
import { startTestBox, mtlsAgent } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { sourceRole } from '../../gateway/src/source/role.js';
import { grantKos, withKos } from '../helpers/kos-grant.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';

const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Reads a retrieve answer to its end: the bytes, and whether the connection failed before the end. */
async function retrieve(url: string, dispatcher: Dispatcher): Promise<{ status: number; body: Buffer; aborted: boolean; contentType: string }> {
  const r = await request(url, { dispatcher, headers: { accept: ACCEPT } });
  const chunks: Buffer[] = [];
  let aborted = false;
  try {
    for await (const c of r.body) chunks.push(c as Buffer);
  } catch {
    aborted = true;
  }
  return { status: r.statusCode, body: Buffer.concat(chunks), aborted, contentType: String(r.headers['content-type']) };
}

const closeDelimiterOf = (contentType: string) => `--${/boundary=([^;]+)/.exec(contentType)![1]}--`;

t.test('a truncated file in a folder PACS aborts the study answer', async (t) => {
  const study = makeMgStudy({ size: [256, 256], seed: 41 });
  const box = await startTestBox({ pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'trunc-pacs-')) }, boxOptions: { plugins: [sourceRole] } });
  t.teardown(() => box.close());
  const stored = await box.pacs.store((async function* () { for (const f of study.files) yield f.part10; })());
  t.equal(stored.stored.length, 4);
  const agent = await mtlsAgent((await testPki()).demoClient);
  t.teardown(() => agent.close());
  const client = withKos(agent, await grantKos(box, study.files.map((f) => f.part10)));
  const url = `${box.peerUrl}/dicom-web/studies/${study.studyInstanceUid}`;

  const whole = await retrieve(url, client);
  t.notOk(whole.aborted, 'the intact study streams to its end');
  t.ok(whole.body.includes(closeDelimiterOf(whole.contentType)), 'with its closing delimiter');

  // cut the third view's file in the store, as a disk or copy fault would
  const victim = study.files[2].part10;
  const file = filesUnder((box.pacs as unknown as { root: string }).root).find((f) => statSync(f).size === victim.length && readFileSync(f).equals(victim))!;
  t.ok(file, 'the stored file is found');
  truncateSync(file, 60_000);

  const cut = await retrieve(url, client);
  t.equal(cut.status, 200, 'the answer had started');
  t.ok(cut.aborted, 'the connection is cut instead of ending cleanly');
  t.notOk(cut.body.includes(closeDelimiterOf(cut.contentType)), 'no closing delimiter: the answer does not claim to be complete');
  t.ok(cut.body.includes(study.files[0].part10.subarray(-4096)), 'the parts before the bad one went out');

  const instance = await retrieve(`${url}/series/${study.seriesInstanceUid}/instances/${study.files[2].sopInstanceUid}`, client);
  t.ok(instance.aborted && !instance.body.includes(closeDelimiterOf(instance.contentType)), 'the instance alone is refused the same way');
  const other = await retrieve(`${url}/series/${study.seriesInstanceUid}/instances/${study.files[1].sopInstanceUid}`, client);
  t.ok(!other.aborted && other.body.includes(study.files[1].part10), 'the box keeps serving the intact ones');
});

t.test('a file cut short in Orthanc\'s storage aborts the study answer', async (t) => {
  // Orthanc refuses a truncated upload, but serves whatever its disk holds: cut a stored file
  const orthanc = await startOrthanc({ gdcm: false, storageCache: false });
  t.teardown(() => orthanc.stop());
  const study = makeMgStudy({ size: [256, 256], seed: 42 });
  await orthanc.upload(study.files.map((f) => f.part10));
  const box = await startTestBox({ pacs: { kind: 'dicomweb', url: orthanc.dicomWebUrl }, boxOptions: { plugins: [sourceRole] } });
  t.teardown(() => box.close());
  const agent = await mtlsAgent((await testPki()).demoClient);
  t.teardown(() => agent.close());
  const client = withKos(agent, await grantKos(box, study.files.map((f) => f.part10)));
  const url = `${box.peerUrl}/dicom-web/studies/${study.studyInstanceUid}`;

  const whole = await retrieve(url, client);
  t.ok(!whole.aborted && whole.body.includes(closeDelimiterOf(whole.contentType)), 'the intact study streams to its end');

  const victim = study.files[1].part10;
  const file = filesUnder(join(orthanc.workdir, 'db')).find((f) => statSync(f).size === victim.length && readFileSync(f).equals(victim))!;
  t.ok(file, 'the stored file is found');
  truncateSync(file, 60_000);

  const cut = await retrieve(url, client);
  t.equal(cut.status, 200, 'the answer had started');
  t.ok(cut.aborted, 'the connection is cut instead of ending cleanly');
  t.notOk(cut.body.includes(closeDelimiterOf(cut.contentType)), 'no closing delimiter: the answer does not claim to be complete');
});
