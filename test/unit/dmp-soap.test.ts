// SOAP/MTOM framing and XDS answer readers, including the DMP's real answer from the ANS example.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { encodeMtom, decodeSoapMessage, xopContent } from '../../gateway/src/dmp/mtom.js';
import { buildEnvelope, buildFault, parseEnvelope, readFault, readRegistryResponse, registryResponseXml } from '../../gateway/src/dmp/soap.js';
import { ACTION, NS } from '../../gateway/src/dmp/xds-constants.js';
import { element, elements } from '../../gateway/src/dmp/dom.js';
import { parseQueryValue, findDocumentsRequest, readQueryParams } from '../../gateway/src/dmp/xds-query.js';
import { parseXml } from '../../gateway/src/dmp/dom.js';

const XDS = '../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/XDS/';
const envelopeOf = (raw: string) => raw.slice(raw.indexOf('<soap:Envelope'), raw.indexOf('</soap:Envelope>') + 16);

t.test('the ANS DMP answer reads as a successful ITI-41 response to the ANS request', async (t) => {
  const res = parseEnvelope(envelopeOf(readFileSync(new URL(XDS + 'response.xml', import.meta.url), 'utf8')));
  const req = parseEnvelope(envelopeOf(readFileSync(new URL(XDS + 'publication.xml', import.meta.url), 'utf8')));
  t.equal(res.action, ACTION.iti41Response);
  t.equal(req.action, ACTION.iti41);
  t.equal(res.relatesTo, req.messageId, 'RelatesTo = the request MessageID');
  t.ok(req.assertion?.includes('Authentification_Mode'), 'the VIHF is found in the request header');
  t.same(readRegistryResponse(res.payload!), { status: 'Success', errors: [] });
});

t.test('a DMP answer with a DTD is refused, not parsed', async (t) => {
  const answer = envelopeOf(readFileSync(new URL(XDS + 'response.xml', import.meta.url), 'utf8'));
  t.equal(parseEnvelope(answer).action, ACTION.iti41Response, 'the answer alone parses');
  t.throws(() => parseEnvelope('<!DOCTYPE e [<!ENTITY a "b">]>' + answer), { name: 'XmlParseError', message: /DOCTYPE/ });
  t.throws(() => parseXml('<?xml version="1.0"?><!doctype x><x/>'), /DOCTYPE/, 'lower case too');
});

t.test('MTOM round trip keeps binary attachments byte-identical', async (t) => {
  const bin = randomBytes(5000);
  bin.write('\r\n--MIMEBoundary_', 100, 'latin1'); // a boundary-like sequence inside the content
  const env = buildEnvelope({ action: ACTION.iti41, body: `<x:D xmlns:x="${NS.xds}"><xop:Include xmlns:xop="${NS.xop}" href="cid:a%40b"/></x:D>` });
  const m = encodeMtom(env, [{ contentId: 'a@b', contentType: 'application/dicom', content: bin }], ACTION.iti41);
  t.match(m.contentType, /^multipart\/related; type="application\/xop\+xml"; boundary="[^"]+"; start="<[^>]+>"; start-info="application\/soap\+xml"/);
  const back = decodeSoapMessage(m.body, m.contentType);
  const parsed = parseEnvelope(back.envelope);
  t.equal(parsed.action, ACTION.iti41);
  t.ok(xopContent(parsed.payload!, back.attachments).equals(bin), 'attachment identical');
  t.throws(() => decodeSoapMessage(Buffer.from('nope'), 'multipart/related; boundary=zz'), /boundary/);
  t.throws(() => decodeSoapMessage(Buffer.from('x'), 'image/png'), /unexpected content type/);
});

t.test('faults and failures are typed', async (t) => {
  const f = parseEnvelope(buildFault({ code: 'Sender', subcode: 'wsse:FailedCheck', reason: 'bad signature' }));
  t.same(readFault(f.payload), { code: 'soap:Sender', subcode: 'wsse:FailedCheck', reason: 'bad signature' });
  const rr = parseXml(registryResponseXml([{ errorCode: 'XDSUnknownPatientId', codeContext: 'who?', severity: 'urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error' }]));
  const r = readRegistryResponse(rr.documentElement!);
  t.equal(r.status, 'Failure');
  t.equal(r.errors[0].errorCode, 'XDSUnknownPatientId');
});

t.test('stored query parameters', async (t) => {
  t.same(parseQueryValue("('a','b''c')"), ['a', "b'c"]);
  t.same(parseQueryValue('20240101'), ['20240101']);
  const q = parseXml(findDocumentsRequest({ patientId: '1^^^&2&ISO^NH', typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }], modalities: ['MR', 'CT'] }));
  const params = readQueryParams(element(q.documentElement!, 'AdhocQuery')!);
  t.same(params.get('$XDSDocumentEntryPatientId'), [['1^^^&2&ISO^NH']]);
  t.same(params.get('$XDSDocumentEntryTypeCode'), [['IMG-KOS^^1.2.250.1.213.1.1.4.12']]);
  t.same(params.get('$XDSDocumentEntryEventCodeList'), [['MR^^1.2.250.1.213.1.1.5.618'], ['CT^^1.2.250.1.213.1.1.5.618']], 'modalities ANDed in separate slots');
  t.equal(elements(element(q.documentElement!, 'AdhocQuery')!, 'Slot').length, 5);
});
