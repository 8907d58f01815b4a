// Shared pieces of the allow-list XAdES signature: namespace/algorithm URIs, the XPath Filter 2.0
// transform the ANS list uses (which XML-DSig libraries lack), and small DER/PEM helpers.
import xpath from 'xpath';

export const NS = {
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  xades: 'http://uri.etsi.org/01903/v1.3.2#',
  filter2: 'http://www.w3.org/2002/06/xmldsig-filter2',
} as const;

export const ALG = {
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  filter2: 'http://www.w3.org/2002/06/xmldsig-filter2',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha512: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha512: 'http://www.w3.org/2001/04/xmlenc#sha512',
  signedPropertiesType: 'http://uri.etsi.org/01903#SignedProperties',
} as const;

/** Node hash names for the digest URIs we accept (SHA-1 is refused). */
export const DIGESTS: Record<string, string> = { [ALG.sha256]: 'sha256', [ALG.sha512]: 'sha512' };

/** The only Filter 2.0 expression we implement: subtract every ds:Signature of the document. */
export const FILTER2_SUBTRACT_SIGNATURES = '/descendant::ds:Signature';

/**
 * XPath Filter 2.0 transform, restricted to `subtract /descendant::ds:Signature` (the form the ANS
 * list uses; the caller checks the transform's parameters before relying on this class). It works on
 * the clone xml-crypto hands it, so removing nodes in place is safe.
 */
export class Filter2SubtractSignatures {
  includeComments = false;
  process(node: Node): Node {
    const found = xpath.select(".//*[local-name(.)='Signature' and namespace-uri(.)='http://www.w3.org/2000/09/xmldsig#']", node) as Node[];
    for (const sig of found) sig.parentNode?.removeChild(sig);
    return node;
  }
  getAlgorithmName(): string {
    return ALG.filter2;
  }
}

export function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

export function derToPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
}

/** Split a PEM bundle into its certificates. */
export function splitPems(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((p) => p + '\n') ?? [];
}

// --- minimal DER reader, enough for IssuerSerialV2 ------------------------------------------------

export interface Tlv { tag: number; start: number; len: number; end: number }

export function readTlv(buf: Buffer, pos: number): Tlv {
  const tag = buf[pos];
  let len = buf[pos + 1];
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  if (start + len > buf.length) throw new Error('truncated DER');
  return { tag, start, len, end: start + len };
}

/**
 * IssuerSerialV2 (RFC 5035 IssuerSerial: SEQUENCE { issuer GeneralNames, serialNumber INTEGER }).
 * Returns the issuer's directoryName (Name DER, when present) and the serial as upper-case hex
 * without leading zero bytes.
 */
export function parseIssuerSerial(der: Buffer): { issuerNameDer?: Buffer; serialHex: string } {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30) throw new Error('IssuerSerialV2 is not a SEQUENCE');
  const names = readTlv(der, outer.start);
  if (names.tag !== 0x30) throw new Error('IssuerSerialV2 issuer is not GeneralNames');
  let issuerNameDer: Buffer | undefined;
  for (let p = names.start; p < names.end;) {
    const gn = readTlv(der, p);
    if (gn.tag === 0xa4) {
      const name = readTlv(der, gn.start);
      issuerNameDer = der.subarray(gn.start, name.end);
    }
    p = gn.end;
  }
  const serial = readTlv(der, names.end);
  if (serial.tag !== 0x02) throw new Error('IssuerSerialV2 serial is not an INTEGER');
  return { issuerNameDer, serialHex: normaliseSerial(der.subarray(serial.start, serial.end).toString('hex')) };
}

export function normaliseSerial(hex: string): string {
  return hex.toUpperCase().replace(/^(00)+(?=.)/, '');
}

// --- DER writer for IssuerSerialV2 when signing -----------------------------------------------------

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) { bytes.unshift(n & 0xff); n >>= 8; }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function derTlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLen(body.length), body]);
}

/** IssuerSerialV2 DER from the issuer Name DER (as in the certificate) and the serial hex. */
export function buildIssuerSerial(issuerNameDer: Buffer, serialHex: string): Buffer {
  let serial = Buffer.from(serialHex.length % 2 ? '0' + serialHex : serialHex, 'hex');
  if (serial[0] & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  const directoryName = derTlv(0xa4, issuerNameDer); // GeneralName [4] EXPLICIT Name
  const generalNames = derTlv(0x30, directoryName);
  return derTlv(0x30, Buffer.concat([generalNames, derTlv(0x02, serial)]));
}

/** The issuer Name exactly as encoded in a certificate's tbsCertificate. */
export function issuerNameDerOf(certDer: Buffer): Buffer {
  const cert = readTlv(certDer, 0);
  const tbs = readTlv(certDer, cert.start);
  let p = tbs.start;
  let t = readTlv(certDer, p);
  if (t.tag === 0xa0) { p = t.end; t = readTlv(certDer, p); } // version
  p = t.end; // serialNumber
  p = readTlv(certDer, p).end; // signature AlgorithmIdentifier
  const issuer = readTlv(certDer, p);
  return certDer.subarray(p, issuer.end);
}
