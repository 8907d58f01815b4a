import t from 'tap';
import { readFileSync } from 'node:fs';
import { buildAck, readAck } from '../../gateway/src/hl7/ack.js';
import { handleHl7 } from '../../gateway/src/hl7/handle.js';
import { parseHl7 } from '../../gateway/src/hl7/message.js';
import type { PublicationMessage } from '../../gateway/src/hl7/publication-message.js';
import { Hl7Rejection } from '../../gateway/src/hl7/rejection.js';

const CDA = readFileSync(new URL('../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml', import.meta.url));
const ORU = readFileSync(new URL('../fixtures/hl7/CR-ORU.hl7', import.meta.url), 'utf8')
  .replace('{{CDA_BASE64}}', CDA.toString('base64'))
  .replaceAll('{{idMessage}}', 'CTRL-42').replace('{{applicationSupplier}}', 'RIS').replace('{{applicationReceiver}}', 'DRIMBOX');

t.test('AA: MSH answers the sender, MSA echoes the control id', async (t) => {
  const ack = buildAck({ original: parseHl7(ORU), code: 'AA', now: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) });
  const segs = ack.split('\r').filter(Boolean);
  t.equal(segs.length, 2);
  const m = parseHl7(ack);
  t.same(m.messageType, { code: 'ACK', event: 'R01', structure: 'ACK' });
  t.equal(m.msh.get(3), 'DRIMBOX', 'we are the sending application of the ACK');
  t.equal(m.msh.get(5), 'RIS');
  t.equal(m.msh.get(7), '20240102030405+0000');
  t.equal(m.version, '2.5');
  t.same(readAck(m), { code: 'AA', controlId: 'CTRL-42', errorCode: undefined, location: undefined, text: undefined });
});

t.test('NACK: ERR with location, 0357 code and the user message (escaped)', async (t) => {
  const ack = buildAck({ original: parseHl7(ORU), code: 'AE', error: { errorCode: 101, location: 'OBX^1^5', message: 'Missing report | see OBX' } });
  const m = parseHl7(ack);
  const err = m.first('ERR')!;
  t.equal(err.raw(2), 'OBX^1^5');
  t.equal(err.get(3, 1), '101');
  t.equal(err.get(3, 2), 'Required field missing');
  t.equal(err.get(3, 3), 'HL70357');
  t.equal(err.get(4), 'E');
  t.equal(err.get(8), 'Missing report | see OBX');
  t.equal(readAck(m).code, 'AE');
  // unparseable input still gets a NACK
  const blind = parseHl7(buildAck({ code: 'AR', error: { errorCode: 100, message: 'garbage' } }));
  t.equal(readAck(blind).code, 'AR');
  t.equal(readAck(blind).controlId, '');
});

t.test('handleHl7: AA only after accept resolved; refusals and failures become NACKs', async (t) => {
  const order: string[] = [];
  const ack = await handleHl7(ORU, async (m: PublicationMessage) => {
    t.equal(m.kind, 'publish');
    await new Promise((r) => setTimeout(r, 20));
    order.push('stored');
  });
  order.push('acked');
  t.same(order, ['stored', 'acked']);
  t.equal(readAck(parseHl7(ack)).code, 'AA');

  const refused = readAck(parseHl7(await handleHl7(ORU, async () => {
    throw new Hl7Rejection({ errorCode: 207, location: 'OBR^1^3', message: 'Accession number unknown in the PACS.' });
  })));
  t.same([refused.code, refused.errorCode, refused.location, refused.text], ['AE', '207', 'OBR^1^3', 'Accession number unknown in the PACS.']);

  let seen: unknown;
  const crashed = readAck(parseHl7(await handleHl7(ORU, async () => { throw new Error('disk full'); }, { onError: (e) => { seen = e; } })));
  t.equal(crashed.code, 'AE');
  t.equal(crashed.errorCode, '207');
  t.match(crashed.text, /NOT accepted/);
  t.notMatch(crashed.text, /disk full/, 'internal details are not shown to RIS users');
  t.ok(seen instanceof Error);

  let called = false;
  const bad = readAck(parseHl7(await handleHl7('this is not hl7', async () => { called = true; })));
  t.equal(bad.code, 'AR');
  t.equal(called, false);
});
