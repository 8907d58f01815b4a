// MLLP round trips against our listener: the real node-hl7-client, and raw sockets for bad framing.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Client, Message, type InboundResponse } from 'node-hl7-client';
import { readAck } from '../../gateway/src/hl7/ack.js';
import { parseHl7 } from '../../gateway/src/hl7/message.js';
import { handleHl7, startMllpServer } from '../../gateway/src/hl7/mllp-server.js';
import type { PublicationMessage } from '../../gateway/src/hl7/publication-message.js';
import { freePort } from '../helpers/ports.js';

const CDA = readFileSync(new URL('../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml', import.meta.url));
const oru = (id: string) => readFileSync(new URL('../fixtures/hl7/CR-ORU.hl7', import.meta.url), 'utf8')
  .replace('{{CDA_BASE64}}', CDA.toString('base64'))
  .replaceAll('{{idMessage}}', id).replace(/\{\{\w+\}\}/g, 'X')
  .trim().split('\n').join('\r');

async function server(t: { teardown: (fn: () => unknown) => void }, maxBytes?: number) {
  const accepted: PublicationMessage[] = [];
  const srv = await startMllpServer({
    host: '127.0.0.1', port: await freePort(), maxBytes, allowedSenders: ['127.0.0.1'],
    handler: (raw) => handleHl7(raw, async (m) => { accepted.push(m); }),
  });
  t.teardown(() => srv.close());
  return { srv, accepted };
}

/** send raw bytes, collect `count` framed answers */
function exchange(port: number, payload: Buffer | Buffer[], count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const out: string[] = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`timeout, got ${out.length} answers`)); }, 10_000);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let end;
      while ((end = buf.indexOf('\x1c\r')) >= 0) {
        const start = buf.indexOf(0x0b);
        out.push(buf.subarray(start + 1, end).toString('utf8'));
        buf = buf.subarray(end + 2);
      }
      if (out.length >= count) { clearTimeout(timer); sock.end(); resolve(out); }
    });
    sock.on('error', reject);
    const parts = Array.isArray(payload) ? payload : [payload];
    (async () => { for (const p of parts) { sock.write(p); await new Promise((r) => setTimeout(r, 5)); } })();
  });
}
const framed = (s: string) => Buffer.concat([Buffer.from([0x0b]), Buffer.from(s, 'utf8'), Buffer.from([0x1c, 0x0d])]);

t.test('node-hl7-client 3.2 sends an ORU^R01 with a CDA: AA round trip', async (t) => {
  const { srv, accepted } = await server(t);
  const client = new Client({ host: '127.0.0.1' });
  const acks: string[] = [];
  let done!: () => void;
  const got = new Promise<void>((r) => { done = r; });
  const conn = client.createConnection({ port: srv.port, waitAck: true } as never, async (res: InboundResponse) => {
    acks.push(res.getMessage().toString());
    done();
  });
  t.teardown(() => conn.close());
  await conn.sendMessage(new Message({ text: oru('CLIENT-1') }));
  await got;
  const ack = readAck(parseHl7(acks[0]));
  t.equal(ack.code, 'AA');
  t.equal(ack.controlId, 'CLIENT-1');
  t.equal(accepted.length, 1);
  t.equal(accepted[0].kind, 'publish');
});

t.test('several messages on one connection, split across TCP writes, answered in order', async (t) => {
  const { srv, accepted } = await server(t);
  const all = Buffer.concat([framed(oru('A1')), framed(oru('A2')), framed(oru('A3'))]);
  const pieces = [all.subarray(0, 7), all.subarray(7, 100_000), all.subarray(100_000, all.length - 1), all.subarray(all.length - 1)];
  const answers = await exchange(srv.port, pieces, 3);
  t.same(answers.map((a) => readAck(parseHl7(a)).controlId), ['A1', 'A2', 'A3']);
  t.same(answers.map((a) => readAck(parseHl7(a)).code), ['AA', 'AA', 'AA']);
  t.equal(accepted.length, 3);
});

t.test('bad input gets a NACK and the listener keeps serving', async (t) => {
  const { srv, accepted } = await server(t, 200_000);
  // missing start byte
  const [noStart] = await exchange(srv.port, Buffer.concat([Buffer.from(oru('NS1'), 'utf8'), Buffer.from([0x1c, 0x0d])]), 1);
  const a1 = readAck(parseHl7(noStart));
  t.equal(a1.code, 'AR');
  t.equal(a1.controlId, 'NS1', 'the NACK still names the message');
  t.match(a1.text, /start byte/);
  // garbage inside a frame
  const [garbage] = await exchange(srv.port, framed('\x00\x01 hello, not HL7'), 1);
  t.equal(readAck(parseHl7(garbage)).code, 'AR');
  // oversize (limit 200 kB, message ~150 kB CDA + padding)
  const big = oru('BIG1').replace('^Base64^', '^Base64^' + 'A'.repeat(120_000));
  const [tooBig, after] = await exchange(srv.port, [framed(big), framed(oru('AFTER'))], 2);
  const a2 = readAck(parseHl7(tooBig));
  t.equal(a2.code, 'AR');
  t.equal(a2.controlId, 'BIG1');
  t.match(a2.text, /too large/);
  t.equal(readAck(parseHl7(after)).code, 'AA', 'the next message on the same connection is fine');
  // a peer that disconnects mid-frame does not hurt
  await new Promise<void>((r) => { const s = connect(srv.port, '127.0.0.1', () => { s.write(Buffer.from([0x0b, 0x4d, 0x53])); s.destroy(); r(); }); });
  const [ok] = await exchange(srv.port, framed(oru('LAST')), 1);
  t.equal(readAck(parseHl7(ok)).code, 'AA');
  t.same(accepted.map((m) => m.controlId), ['AFTER', 'LAST']);
});

t.test('a refused report gets AE with the reason (ERR)', async (t) => {
  const { srv, accepted } = await server(t);
  const bad = oru('BAD1').replace(/\^Base64\^[^|\r]*/, '^Base64^bm90IHhtbA==');
  const [nack] = await exchange(srv.port, framed(bad), 1);
  const a = readAck(parseHl7(nack));
  t.equal(a.code, 'AE');
  t.equal(a.errorCode, '102');
  t.equal(a.location, 'OBX^1^5');
  t.match(a.text, /not well-formed XML/);
  t.equal(accepted.length, 0);
});
