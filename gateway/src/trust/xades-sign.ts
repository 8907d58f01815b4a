// Signing a whole document with an enveloped XAdES-BASELINE-B signature in the ANS allow-list shape:
// RSA-SHA256, exclusive c14n, Reference 1 over the document with the XPath Filter 2.0 transform
// (subtract /descendant::ds:Signature), Reference 2 over SignedProperties (SigningTime without
// milliseconds, SigningCertificateV2 with IssuerSerialV2, DataObjectFormat), KeyInfo = signer + chain.
// Checked by our verifier and by xmlsec1.
import { X509Certificate, createHash, randomBytes, sign as rsaSign, createPrivateKey } from 'node:crypto';
import { XMLSerializer } from '@xmldom/xmldom';
import { ExclusiveCanonicalization } from 'xml-crypto';
import { ALG, NS, FILTER2_SUBTRACT_SIGNATURES, buildIssuerSerial, issuerNameDerOf, splitPems } from './xades-common.js';
import { parseXml } from './xades-verify.js';

export interface XadesSignOptions {
  /** PKCS#8 or PKCS#1 PEM RSA private key of the signer. */
  keyPem: string;
  /** Signer certificate first, then its issuers (PEMs or one bundle). All go to KeyInfo. */
  certChainPem: string | string[];
  signingTime?: Date;
}

function c14n(node: Node): string {
  return new ExclusiveCanonicalization().process(node as never, {}).toString();
}

function b64digest(alg: 'sha256' | 'sha512', data: string | Buffer): string {
  return createHash(alg).update(data).digest('base64');
}

function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Return `xml` with an enveloped XAdES-BASELINE-B signature appended as the root's last child. */
export function signEnvelopedXades(xml: string, opts: XadesSignOptions): string {
  const pems = (Array.isArray(opts.certChainPem) ? opts.certChainPem : [opts.certChainPem]).flatMap(splitPems);
  if (pems.length === 0) throw new Error('signer certificate missing');
  const signer = new X509Certificate(pems[0]);
  const key = createPrivateKey(opts.keyPem);
  if (!signer.checkPrivateKey(key)) throw new Error('the private key does not belong to the signer certificate');
  const id = `id-${randomBytes(16).toString('hex')}`;
  const time = (opts.signingTime ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const issuerSerial = buildIssuerSerial(issuerNameDerOf(signer.raw), signer.serialNumber).toString('base64');
  const certs = pems.map((p) => `<ds:X509Certificate>${new X509Certificate(p).raw.toString('base64')}</ds:X509Certificate>`).join('');

  const signature =
    `<ds:Signature xmlns:ds="${NS.ds}" Id="${id}"><ds:SignedInfo>` +
    `<ds:CanonicalizationMethod Algorithm="${ALG.excC14n}"/><ds:SignatureMethod Algorithm="${ALG.rsaSha256}"/>` +
    `<ds:Reference Id="r-${id}-1" URI=""><ds:Transforms><ds:Transform Algorithm="${ALG.filter2}">` +
    `<dsig-filter2:XPath xmlns:dsig-filter2="${NS.filter2}" Filter="subtract">${FILTER2_SUBTRACT_SIGNATURES}</dsig-filter2:XPath></ds:Transform>` +
    `<ds:Transform Algorithm="${ALG.excC14n}"/></ds:Transforms><ds:DigestMethod Algorithm="${ALG.sha256}"/><ds:DigestValue></ds:DigestValue></ds:Reference>` +
    `<ds:Reference Type="${ALG.signedPropertiesType}" URI="#xades-${id}"><ds:Transforms><ds:Transform Algorithm="${ALG.excC14n}"/></ds:Transforms>` +
    `<ds:DigestMethod Algorithm="${ALG.sha256}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>` +
    `<ds:SignatureValue Id="value-${id}"></ds:SignatureValue><ds:KeyInfo><ds:X509Data>${certs}</ds:X509Data></ds:KeyInfo>` +
    `<ds:Object><xades:QualifyingProperties xmlns:xades="${NS.xades}" Target="#${id}"><xades:SignedProperties Id="xades-${id}">` +
    `<xades:SignedSignatureProperties><xades:SigningTime>${xmlText(time)}</xades:SigningTime><xades:SigningCertificateV2><xades:Cert>` +
    `<xades:CertDigest><ds:DigestMethod Algorithm="${ALG.sha512}"/><ds:DigestValue>${b64digest('sha512', signer.raw)}</ds:DigestValue></xades:CertDigest>` +
    `<xades:IssuerSerialV2>${issuerSerial}</xades:IssuerSerialV2></xades:Cert></xades:SigningCertificateV2></xades:SignedSignatureProperties>` +
    `<xades:SignedDataObjectProperties><xades:DataObjectFormat ObjectReference="#r-${id}-1"><xades:MimeType>text/xml</xades:MimeType>` +
    `</xades:DataObjectFormat></xades:SignedDataObjectProperties></xades:SignedProperties></xades:QualifyingProperties></ds:Object></ds:Signature>`;

  const close = xml.match(/<\/[^>]+>\s*$/);
  if (!close || close.index === undefined) throw new Error('document has no closing root tag');
  if (/<(\w+:)?Signature[\s>]/.test(xml)) throw new Error('document is already signed');
  const doc = parseXml(xml.slice(0, close.index) + signature + xml.slice(close.index));
  const root = doc.documentElement as unknown as Element;
  const sig = root.lastChild as Element;
  const byName = (el: Element, local: string): Element[] => Array.from(el.getElementsByTagNameNS(NS.ds, local)) as unknown as Element[];

  // Reference 1: the document without its signature.
  const clone = root.cloneNode(true) as Element;
  clone.removeChild(clone.lastChild as Node);
  const digests = byName(sig, 'DigestValue').filter((d) => (d.parentNode as Element).localName === 'Reference');
  digests[0].appendChild(doc.createTextNode(b64digest('sha256', c14n(clone as unknown as Node))));
  // Reference 2: SignedProperties.
  const sp = Array.from(sig.getElementsByTagNameNS(NS.xades, 'SignedProperties'))[0] as unknown as Node;
  digests[1].appendChild(doc.createTextNode(b64digest('sha256', c14n(sp))));
  // SignatureValue over the canonical SignedInfo.
  const signedInfo = byName(sig, 'SignedInfo')[0];
  const value = rsaSign('sha256', Buffer.from(c14n(signedInfo as unknown as Node), 'utf8'), key).toString('base64');
  byName(sig, 'SignatureValue')[0].appendChild(doc.createTextNode(value));

  const out = new XMLSerializer().serializeToString(doc as never);
  const decl = xml.match(/^\s*<\?xml[^>]*\?>/);
  return decl && !out.startsWith('<?xml') ? decl[0] + out : out;
}
