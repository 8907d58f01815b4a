import t from 'tap';
import { decodeEscapes, DEFAULT_DELIMITERS, encodeEscapes, parseHl7 } from '../../gateway/src/hl7/message.js';
import { Hl7Rejection } from '../../gateway/src/hl7/rejection.js';

const MSH = 'MSH|^~\\&|RIS|CENTRE|DRIMBOX|CENTRE|20240101120000||ORU^R01^ORU_R01|MSG001|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2';

t.test('reads MSH fields, type, control id, version', async (t) => {
  const m = parseHl7(`${MSH}\rPID|||123^^^AUTH&1.2.3&ISO^PI~456^^^INS&1.2.250.1.213.1.4.10&ISO^INS||DOE^JOHN\r`);
  t.same(m.messageType, { code: 'ORU', event: 'R01', structure: 'ORU_R01' });
  t.equal(m.controlId, 'MSG001');
  t.equal(m.version, '2.5');
  t.equal(m.msh.get(1), '|');
  t.equal(m.msh.get(2), '^~\\&');
  t.equal(m.msh.get(18), 'UNICODE UTF-8');
  t.equal(m.msh.get(21, 2), 'CISIS_CDA_HL7_V2');
  const pid = m.first('PID')!;
  t.equal(pid.repetitions(3).length, 2);
  t.equal(pid.get(3, 1, 1, 1), '456');
  t.equal(pid.get(3, 4, 2, 1), '1.2.250.1.213.1.4.10', 'subcomponent of a repetition');
  t.equal(pid.get(5, 2), 'JOHN');
  t.equal(pid.get(40), '', 'absent field is empty');
});

t.test('decodes escape sequences after splitting', async (t) => {
  const m = parseHl7(`${MSH}\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f \\X4C\\\\XC3A9\\ line\\.br\\two\r`);
  t.equal(m.first('NTE')!.get(3), 'a|b^c&d~e\\f Lé line\ntwo');
  t.equal(decodeEscapes(encodeEscapes('x|y^z&w~v\\u', DEFAULT_DELIMITERS), DEFAULT_DELIMITERS), 'x|y^z&w~v\\u');
});

t.test('uses the encoding characters the sender declares', async (t) => {
  const m = parseHl7('MSH#$%*!#A#B#C#D#2024##ORU$R01#42#P#2.5\rPID###1$$$X!1.2.3\r');
  t.equal(m.messageType.event, 'R01');
  t.equal(m.first('PID')!.get(3, 4, 2), '1.2.3');
});

t.test('accepts LF and CRLF segment separators, and wrapped lines', async (t) => {
  const lf = parseHl7(`${MSH}\nPID|||1\nOBX|1|ED|X||^TEXT^XML^Base64^QUJD\n`);
  t.equal(lf.segments.length, 3);
  const crlf = parseHl7(`${MSH}\r\nPID|||1\r\n`);
  t.equal(crlf.segments.length, 2);
  // with CR separators, LF-wrapped Base64 continues the segment
  const wrapped = parseHl7(`${MSH}\rOBX|1|ED|X||^TEXT^XML^Base64^QUJD\nREVG\nR0g=\r`);
  t.equal(wrapped.first('OBX')!.get(5, 5), 'QUJDREVGR0g=');
  // without CR, a line not starting with a segment name continues the previous one
  const wrappedLf = parseHl7(`${MSH}\nOBX|1|ED|X||^TEXT^XML^Base64^QUJD\nREVG\n`);
  t.equal(wrappedLf.first('OBX')!.get(5, 5), 'QUJDREVG');
});

t.test('refuses what is not an HL7 message', async (t) => {
  for (const bad of ['', 'hello world', 'PID|||1', 'MSH|']) {
    t.throws(() => parseHl7(bad), Hl7Rejection, JSON.stringify(bad));
  }
  const e = (() => { try { parseHl7('MSH|^~\\&|A|B|C|D|2024||'); } catch (x) { return x as Hl7Rejection; } })();
  t.equal(e?.errorCode, 101);
  t.equal(e?.location, 'MSH^1^9');
});
