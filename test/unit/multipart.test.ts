import t from 'tap';
import { Readable } from 'node:stream';
import { readMultipart, writeMultipart, parseContentType, MultipartError, newBoundary } from '../../gateway/src/dicom/multipart.js';

const boundary = 'b0und4ry';
const partsIn: { headers: Record<string, string>; body: Buffer }[] = [
  { headers: { 'content-type': 'application/dicom' }, body: Buffer.from('first body\r\n--b0und4r not a boundary\r\n-b0und4ry\n--b0und4ry\r--b0und4r') },
  { headers: { 'content-type': 'application/octet-stream', 'content-location': '/x/1' }, body: Buffer.alloc(0) },
  { headers: { 'content-type': 'application/dicom' }, body: Buffer.from([0, 1, 2, 13, 10, 45, 45, 98, 255, 13, 10]) },
];

async function collect(s: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

async function encoded(): Promise<Buffer> {
  async function* gen() { for (const p of partsIn) yield p; }
  return collect(writeMultipart(gen(), boundary));
}

function chunked(buf: Buffer, cuts: number[]): Readable {
  const pieces: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, buf.length]) { pieces.push(buf.subarray(prev, c)); prev = c; }
  return Readable.from(pieces.filter((p) => p.length), { objectMode: false });
}

async function parseAll(s: Readable): Promise<{ headers: Record<string, string>; body: Buffer }[]> {
  const out = [];
  for await (const p of readMultipart(s, boundary)) out.push({ headers: p.headers, body: await collect(p.body) });
  return out;
}

t.test('writer output is standard multipart/related', async (t) => {
  const buf = await encoded();
  const s = buf.toString('latin1');
  t.ok(s.startsWith(`--${boundary}\r\ncontent-type: application/dicom\r\n\r\nfirst body`));
  t.ok(s.endsWith(`\r\n--${boundary}--\r\n`));
});

t.test('round trip, input split at every byte position', async (t) => {
  const buf = await encoded();
  for (let i = 0; i <= buf.length; i++) {
    const got = await parseAll(chunked(buf, [i]));
    if (got.length !== 3 || got.some((p, k) => !p.body.equals(partsIn[k].body) || p.headers['content-type'] !== partsIn[k].headers['content-type'])) {
      t.fail(`split at ${i} mis-parsed`);
      return;
    }
  }
  t.pass('all splits parse identically');
  const oneByte = await parseAll(chunked(buf, Array.from({ length: buf.length - 1 }, (_, i) => i + 1)));
  t.same(oneByte.map((p) => p.body), partsIn.map((p) => p.body), 'one byte per chunk');
  t.equal(oneByte[1].headers['content-location'], '/x/1');
});

t.test('truncated input throws instead of ending quietly, at every cut', async (t) => {
  const buf = await encoded();
  const endOfLastBody = buf.length - `\r\n--${boundary}--\r\n`.length;
  for (let cut = 0; cut < endOfLastBody + 2; cut++) {
    try {
      await parseAll(chunked(buf.subarray(0, cut), [Math.floor(cut / 2)]));
      t.fail(`cut at ${cut} did not throw`);
      return;
    } catch (e) {
      if (!(e instanceof MultipartError)) { t.fail(`cut at ${cut}: ${String(e)}`); return; }
    }
  }
  t.pass('every cut throws MultipartError');
});

t.test('truncation surfaces as the current body error', async (t) => {
  const buf = await encoded();
  const it = readMultipart(chunked(buf.subarray(0, 60), [30]), boundary);
  const first = await it.next();
  t.notOk(first.done);
  await t.rejects(collect(first.value!.body), MultipartError);
});

t.test('preamble, epilogue, no-header parts and transport padding', async (t) => {
  const raw = Buffer.from(`preamble text\r\n--${boundary}   \r\n\r\nno headers\r\n--${boundary}\r\nA: 1\r\n\r\nx\r\n--${boundary}--\r\nepilogue`);
  const got = await parseAll(chunked(raw, [7]));
  t.same(got.map((p) => p.body.toString()), ['no headers', 'x']);
  t.same(got[0].headers, {});
  t.same(got[1].headers, { a: '1' });
});

t.test('an unread body is skipped; a destroyed body is skipped', async (t) => {
  const buf = await encoded();
  const seen: string[] = [];
  let i = 0;
  for await (const p of readMultipart(chunked(buf, [5, 50]), boundary)) {
    if (i === 0) { /* not read at all */ } else if (i === 1) p.body.destroy(); else seen.push((await collect(p.body)).toString('hex'));
    i++;
  }
  t.equal(i, 3);
  t.same(seen, [partsIn[2].body.toString('hex')]);
});

t.test('reader pulls lazily: backpressure reaches the source', async (t) => {
  const big = Buffer.alloc(8 * 1024 * 1024, 7);
  const chunks = Array.from({ length: 8 }, (_, i) => big.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
  async function* gen() { yield { headers: {}, body: Readable.from(chunks, { objectMode: false }) }; }
  let pulled = 0;
  const src = writeMultipart(gen(), boundary);
  const counting = Readable.from((async function* () { for await (const c of src) { pulled += (c as Buffer).length; yield c; } })(), { objectMode: false, highWaterMark: 1024 });
  const it = readMultipart(counting, boundary);
  const p = (await it.next()).value!;
  await new Promise((r) => setTimeout(r, 50));
  t.ok(pulled <= 3 * 1024 * 1024, `source read only as far as needed (${pulled})`);
  t.equal((await collect(p.body)).length, big.length);
  t.ok((await it.next()).done);
});

t.test('writer: body error destroys the output', async (t) => {
  async function* gen() {
    yield { headers: {}, body: Buffer.from('ok') };
    throw new Error('pacs died');
  }
  await t.rejects(collect(writeMultipart(gen(), boundary)), /pacs died/);
});

t.test('parseContentType', async (t) => {
  const c = parseContentType('Multipart/Related; type="application/dicom"; boundary="a b;c"; transfer-syntax=1.2.840.10008.1.2.4.80');
  t.equal(c.mediaType, 'multipart/related');
  t.same(c.params, { type: 'application/dicom', boundary: 'a b;c', 'transfer-syntax': '1.2.840.10008.1.2.4.80' });
  t.same(parseContentType('application/dicom').params, {});
  t.match(newBoundary(), /^[\w-]{10,70}$/);
});
