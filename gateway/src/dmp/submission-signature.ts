// The IHE DSG submission-set signature: an enveloping XML signature whose ds:Manifest lists every
// document of the submission by `urn:oid:<uniqueId>` with its digest, plus XAdES SignedProperties
// (signing time, signing certificate) and the purposeOfSignature property — the shape of the ANS
// example (SIGN_1.XML), with SHA-256 and exclusive c14n instead of SHA-1 and inclusive c14n.
import { createHash, X509Certificate } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { NS } from './xds-constants.js';
import { esc, parseXml, descendants, attr, text, elements } from './dom.js';

const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
export const PURPOSE_OF_SIGNATURE_SOURCE = '1.2.840.10065.1.12.1.14';

export interface SignedDocumentRef {
  uniqueId: string;
  content: Buffer;
}

export interface SubmissionSignatureInput {
  signatureUid: string;            // the signature document's own uniqueId (becomes Signature/@Id)
  documents: SignedDocumentRef[];
  certPem: string;
  keyPem: string;
  signingTime?: Date;
}

function b64sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('base64');
}

function pemToDerB64(pem: string): string {
  return pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
}

/** Build and sign the submission-set signature document (UTF-8 XML bytes). */
export function buildSubmissionSignature(o: SubmissionSignatureInput): Buffer {
  const cert = new X509Certificate(o.certPem);
  const certDigest = createHash('sha256').update(cert.raw).digest('base64');
  const serialDec = BigInt('0x' + cert.serialNumber).toString();
  const issuer = cert.issuer.split('\n').reverse().join(', ');
  const signingTime = (o.signingTime ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const target = `#${o.signatureUid}`;

  const manifest =
    `<Manifest xmlns="${NS.ds}" Id="IHEManifest">` +
    o.documents
      .map(
        (d) =>
          `<Reference URI="urn:oid:${esc(d.uniqueId)}"><DigestMethod Algorithm="${SHA256}"/>` +
          `<DigestValue>${b64sha256(d.content)}</DigestValue></Reference>`,
      )
      .join('') +
    `</Manifest>`;
  const properties =
    `<SignatureProperties xmlns="${NS.ds}"><SignatureProperty Id="purposeOfSignature" Target="${esc(target)}">` +
    `${PURPOSE_OF_SIGNATURE_SOURCE}</SignatureProperty></SignatureProperties>`;
  const qualifying =
    `<xades:QualifyingProperties xmlns:xades="${NS.xades}" Target="${esc(target)}">` +
    `<xades:SignedProperties Id="S0-SignedProperties"><xades:SignedSignatureProperties>` +
    `<xades:SigningTime>${signingTime}</xades:SigningTime>` +
    `<xades:SigningCertificate><xades:Cert><xades:CertDigest>` +
    `<ds:DigestMethod xmlns:ds="${NS.ds}" Algorithm="${SHA256}"/><ds:DigestValue xmlns:ds="${NS.ds}">${certDigest}</ds:DigestValue>` +
    `</xades:CertDigest><xades:IssuerSerial><ds:X509IssuerName xmlns:ds="${NS.ds}">${esc(issuer)}</ds:X509IssuerName>` +
    `<ds:X509SerialNumber xmlns:ds="${NS.ds}">${serialDec}</ds:X509SerialNumber></xades:IssuerSerial></xades:Cert></xades:SigningCertificate>` +
    `<xades:SignaturePolicyIdentifier><xades:SignaturePolicyImplied/></xades:SignaturePolicyIdentifier>` +
    `</xades:SignedSignatureProperties></xades:SignedProperties></xades:QualifyingProperties>`;

  const sig = new SignedXml({
    privateKey: o.keyPem,
    publicCert: o.certPem,
    signatureAlgorithm: RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
    objects: [{ content: properties }, { content: manifest }, { content: qualifying }],
  });
  sig.addReference({
    xpath: "//*[local-name(.)='Manifest']",
    transforms: [EXC_C14N],
    digestAlgorithm: SHA256,
    type: 'http://www.w3.org/2000/09/xmldsig#Manifest',
  });
  sig.addReference({
    xpath: "//*[local-name(.)='SignedProperties']",
    transforms: [EXC_C14N],
    digestAlgorithm: SHA256,
    type: 'http://uri.etsi.org/01903#SignedProperties',
  });
  sig.computeSignature('<Holder/>', { attrs: { Id: o.signatureUid } });
  return Buffer.from('<?xml version="1.0" encoding="UTF-8"?>' + sig.getSignatureXml(), 'utf8');
}

export interface VerifiedSubmissionSignature {
  signerCertPem: string;
  /** uniqueId → base64 SHA-256 digest as listed in the manifest */
  manifest: Map<string, string>;
}

export class SignatureInvalidError extends Error {}

/**
 * Verify the signature cryptographically with the certificate it carries (the caller checks that
 * certificate against its trust anchors) and return the signed manifest. Only content covered by
 * the signature is returned (read back from xml-crypto's signed references).
 */
export function verifySubmissionSignature(xml: Buffer | string): VerifiedSubmissionSignature {
  const s = typeof xml === 'string' ? xml : xml.toString('utf8');
  let doc;
  try {
    doc = parseXml(s);
  } catch (e) {
    throw new SignatureInvalidError(`signature document is not XML: ${(e as Error).message}`);
  }
  const root = doc.documentElement!;
  if (root.localName !== 'Signature' || root.namespaceURI !== NS.ds) throw new SignatureInvalidError('root is not ds:Signature');
  const certB64 = text(descendants(root, 'X509Certificate')[0]);
  if (!certB64) throw new SignatureInvalidError('no X509Certificate in KeyInfo');
  const signerCertPem = `-----BEGIN CERTIFICATE-----\n${certB64.replace(/\s+/g, '').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
  const v = new SignedXml({ publicCert: signerCertPem });
  v.loadSignature(root as unknown as Node);
  let ok = false;
  try {
    ok = v.checkSignature(s);
  } catch (e) {
    throw new SignatureInvalidError(`signature check failed: ${(e as Error).message}`);
  }
  if (!ok) throw new SignatureInvalidError('signature value or reference digest mismatch');
  const manifestXml = v.getSignedReferences().find((r) => /<(\w+:)?Manifest[\s>]/.test(r));
  if (!manifestXml) throw new SignatureInvalidError('the signature does not cover a Manifest');
  const manifest = new Map<string, string>();
  for (const ref of descendants(parseXml(manifestXml), 'Reference')) {
    const uri = attr(ref, 'URI') ?? '';
    const dm = attr(elements(ref, 'DigestMethod')[0], 'Algorithm');
    if (!uri.startsWith('urn:oid:') || dm !== SHA256) throw new SignatureInvalidError(`unsupported manifest reference ${uri}`);
    manifest.set(uri.slice('urn:oid:'.length), text(elements(ref, 'DigestValue')[0]));
  }
  return { signerCertPem, manifest };
}

export function sha256Base64(b: Buffer): string {
  return b64sha256(b);
}

export { pemToDerB64 };
