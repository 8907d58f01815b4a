// SOAP 1.2 envelopes with WS-Addressing and WS-Security, and the typed reading of XDS answers:
// RegistryResponse, SOAP Faults.
import { randomUUID } from 'node:crypto';
import { XMLSerializer } from '@xmldom/xmldom';
import { NS, RESPONSE_STATUS } from './xds-constants.js';
import { attr, descendant, element, elements, esc, parseXml, text, type Element } from './dom.js';
import type { RegistryErrorDetail } from './errors.js';

export interface EnvelopeInput {
  action: string;
  to?: string;
  messageId?: string;
  relatesTo?: string;
  /** a signed saml2:Assertion to put in wsse:Security */
  assertion?: string;
  body: string;
}

export function buildEnvelope(o: EnvelopeInput): string {
  const messageId = o.messageId ?? `urn:uuid:${randomUUID()}`;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soap:Envelope xmlns:soap="${NS.soap}" xmlns:wsa="${NS.wsa}"><soap:Header>` +
    `<wsa:Action soap:mustUnderstand="true">${esc(o.action)}</wsa:Action>` +
    `<wsa:MessageID>${esc(messageId)}</wsa:MessageID>` +
    (o.relatesTo ? `<wsa:RelatesTo>${esc(o.relatesTo)}</wsa:RelatesTo>` : '') +
    (o.to ? `<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo><wsa:To soap:mustUnderstand="true">${esc(o.to)}</wsa:To>` : '') +
    (o.assertion
      ? `<wsse:Security xmlns:wsse="${NS.wsse}" soap:mustUnderstand="true">${o.assertion.replace(/^<\?xml[^>]*\?>/, '')}</wsse:Security>`
      : '') +
    `</soap:Header><soap:Body>${o.body}</soap:Body></soap:Envelope>`
  );
}

export interface FaultInput {
  code: 'Sender' | 'Receiver';
  subcode?: string;              // QName, e.g. wsse:FailedCheck
  reason: string;
  relatesTo?: string;
}

export function buildFault(o: FaultInput): string {
  const sub = o.subcode
    ? `<soap:Subcode><soap:Value${o.subcode.startsWith('wsse:') ? ` xmlns:wsse="${NS.wsse}"` : ''}>${esc(o.subcode)}</soap:Value></soap:Subcode>`
    : '';
  return buildEnvelope({
    action: 'http://www.w3.org/2005/08/addressing/soap/fault',
    relatesTo: o.relatesTo,
    body:
      `<soap:Fault><soap:Code><soap:Value>soap:${o.code}</soap:Value>${sub}</soap:Code>` +
      `<soap:Reason><soap:Text xml:lang="en">${esc(o.reason)}</soap:Text></soap:Reason></soap:Fault>`,
  });
}

export interface ParsedEnvelope {
  action?: string;
  messageId?: string;
  relatesTo?: string;
  to?: string;
  /** the saml2:Assertion from wsse:Security, serialized */
  assertion?: string;
  /** the first child of soap:Body */
  payload?: Element;
}

export class SoapFormatError extends Error {}

export function parseEnvelope(xml: string): ParsedEnvelope {
  const doc = parseXml(xml);
  const env = doc.documentElement!;
  if (env.localName !== 'Envelope') throw new SoapFormatError('not a SOAP envelope');
  if (env.namespaceURI !== NS.soap) throw new SoapFormatError('not a SOAP 1.2 envelope');
  const header = element(env, 'Header');
  const body = element(env, 'Body');
  if (!body) throw new SoapFormatError('SOAP envelope without Body');
  const h = (n: string): string | undefined => {
    const e = header ? elements(header, n).find((x) => x.namespaceURI === NS.wsa) : undefined;
    return e ? text(e) : undefined;
  };
  const security = header ? elements(header, 'Security').find((x) => x.namespaceURI === NS.wsse) : undefined;
  const assertionEl = security ? elements(security, 'Assertion').find((x) => x.namespaceURI === NS.saml2) : undefined;
  return {
    action: h('Action'),
    messageId: h('MessageID'),
    relatesTo: h('RelatesTo'),
    to: h('To'),
    assertion: assertionEl ? new XMLSerializer().serializeToString(assertionEl as never) : undefined,
    payload: elements(body)[0],
  };
}

export interface SoapFault {
  code: string;
  subcode?: string;
  reason: string;
}

export function readFault(payload: Element | undefined): SoapFault | undefined {
  if (!payload || payload.localName !== 'Fault') return undefined;
  const code = element(payload, 'Code');
  const sub = code ? element(code, 'Subcode') : undefined;
  return {
    code: text(code ? element(code, 'Value') : undefined),
    subcode: sub ? text(element(sub, 'Value')) : undefined,
    reason: text(descendant(payload, 'Text')) || text(element(payload, 'Reason')),
  };
}

export interface RegistryResponseResult {
  status: 'Success' | 'Failure' | 'PartialSuccess';
  errors: RegistryErrorDetail[];
}

function shortStatus(s: string | undefined): RegistryResponseResult['status'] {
  if (s === RESPONSE_STATUS.success) return 'Success';
  if (s === RESPONSE_STATUS.partialSuccess) return 'PartialSuccess';
  return 'Failure';
}

export function readRegistryErrors(e: Element): RegistryErrorDetail[] {
  const list = element(e, 'RegistryErrorList');
  return (list ? elements(list, 'RegistryError') : []).map((r) => ({
    errorCode: attr(r, 'errorCode') ?? '',
    codeContext: attr(r, 'codeContext') ?? text(r),
    severity: attr(r, 'severity') ?? '',
    location: attr(r, 'location'),
  }));
}

/** Read rs:RegistryResponse (or the status + errors of any *Response carrying them). */
export function readRegistryResponse(e: Element): RegistryResponseResult {
  return { status: shortStatus(attr(e, 'status')), errors: readRegistryErrors(e) };
}

/** Build an rs:RegistryResponse body. */
export function registryResponseXml(errors: RegistryErrorDetail[] = []): string {
  const status = errors.length ? RESPONSE_STATUS.failure : RESPONSE_STATUS.success;
  return `<rs:RegistryResponse xmlns:rs="${NS.rs}" status="${status}">${registryErrorListXml(errors)}</rs:RegistryResponse>`;
}

export function registryErrorListXml(errors: RegistryErrorDetail[]): string {
  if (!errors.length) return '';
  return (
    `<rs:RegistryErrorList xmlns:rs="${NS.rs}" highestSeverity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error">` +
    errors
      .map(
        (e) =>
          `<rs:RegistryError errorCode="${esc(e.errorCode)}" codeContext="${esc(e.codeContext)}" severity="${esc(e.severity)}"${e.location ? ` location="${esc(e.location)}"` : ''}/>`,
      )
      .join('') +
    `</rs:RegistryErrorList>`
  );
}
