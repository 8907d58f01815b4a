// Verification of an enveloped XAdES-BASELINE-B signature over a whole document, in the exact shape
// the ANS allow-list uses. The signer key comes only from a certificate we chain-checked against the
// configured trust anchors and that SigningCertificateV2 names; KeyInfo is a pool of candidates,
// never trusted by itself. The caller parses the document only from `signedDocument` (the canonical
// bytes the signature covers), so nothing outside the signature can smuggle content in.
import 'reflect-metadata';
import { X509Certificate, createHash } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { dtdRefusal } from '../xml/dtd.js';
import xpath from 'xpath';
import { SignedXml } from 'xml-crypto';
import * as px509 from '@peculiar/x509';
import {
  ALG, DIGESTS, NS, FILTER2_SUBTRACT_SIGNATURES, Filter2SubtractSignatures, derToPem, splitPems, parseIssuerSerial, normaliseSerial,
} from './xades-common.js';

export class SignatureRejected extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'SignatureRejected';
  }
}

export interface VerifiedSignature {
  /** Exclusive-c14n form of the document without its signature: exactly what the signature covers. */
  signedDocument: string;
  signer: X509Certificate;
  /** signer, intermediates, trust anchor. */
  chain: X509Certificate[];
  signingTime: Date;
}

const select = xpath.useNamespaces({ ds: NS.ds, xades: NS.xades, f2: NS.filter2 });

function fail(reason: string): never {
  throw new SignatureRejected(reason);
}

function one(expr: string, ctx: Node, what: string): Element {
  const nodes = select(expr, ctx) as Node[];
  if (nodes.length !== 1) fail(`${what}: expected exactly one, found ${nodes.length}`);
  return nodes[0] as Element;
}

function attr(el: Element, name: string): string {
  return el.getAttribute(name) ?? '';
}

export function parseXml(xml: string): Document {
  const refused = dtdRefusal(xml);
  if (refused) fail(refused);
  let error: string | undefined;
  let doc: Document | undefined;
  try {
    doc = new DOMParser({
      onError: (level: string, msg: string) => {
        if (level !== 'warning' && !error) error = msg;
      },
    }).parseFromString(xml, 'text/xml') as unknown as Document;
  } catch (e) {
    error = (e as Error).message;
  }
  if (error || !doc?.documentElement) fail(`not well-formed XML: ${error ?? 'no root element'}`);
  return doc as Document;
}

/** Parse every certificate of PEM strings/bundles. */
export function loadCertificates(pems: string[]): X509Certificate[] {
  return pems.flatMap(splitPems).map((p) => new X509Certificate(p));
}

function keyUsage(cert: X509Certificate): number | undefined {
  const ext = new px509.X509Certificate(cert.raw).getExtension(px509.KeyUsagesExtension);
  return ext?.usages;
}

function checkValidity(cert: X509Certificate, at: Date, label: string): void {
  if (new Date(cert.validFrom) > at) fail(`${label} certificate (${oneLine(cert.subject)}) is not valid before ${new Date(cert.validFrom).toISOString()}`);
  if (new Date(cert.validTo) < at) fail(`${label} certificate (${oneLine(cert.subject)}) expired on ${new Date(cert.validTo).toISOString()}`);
}

export function oneLine(nodeSubject: string): string {
  return nodeSubject.split('\n').reverse().join(',');
}

/** Signer → … → trust anchor, every link checked (issuer name, signature, CA flag, key usage, dates). */
function buildChain(signer: X509Certificate, pool: X509Certificate[], anchors: X509Certificate[], now: Date): X509Certificate[] {
  const isAnchor = (c: X509Certificate) => anchors.some((a) => a.fingerprint256 === c.fingerprint256);
  const chain = [signer];
  let current = signer;
  for (let depth = 0; depth < 8; depth++) {
    if (isAnchor(current)) return chain;
    const issuedBy = (c: X509Certificate) => c.subject === current.issuer && current.checkIssued(c) && current.verify(c.publicKey);
    const issuer = anchors.find(issuedBy) ?? pool.find((c) => c.fingerprint256 !== current.fingerprint256 && issuedBy(c));
    if (!issuer) {
      fail(`certificate chain of ${oneLine(signer.subject)} does not lead to a configured trust anchor (stuck at issuer ${oneLine(current.issuer)})`);
    }
    if (!issuer.ca) fail(`issuer ${oneLine(issuer.subject)} is not a CA certificate`);
    const ku = keyUsage(issuer);
    if (ku !== undefined && !(ku & px509.KeyUsageFlags.keyCertSign)) fail(`issuer ${oneLine(issuer.subject)} may not sign certificates (keyUsage)`);
    checkValidity(issuer, now, 'issuer');
    chain.push(issuer);
    current = issuer;
  }
  return fail('certificate chain too long');
}

/**
 * Verify the single enveloped XAdES signature of `xml`. Throws SignatureRejected with a reason.
 * Accepted shape: one ds:Signature, child of the root; SignedInfo with exclusive c14n and RSA-SHA256/512;
 * Reference 1 `URI=""` with [Filter 2.0 subtract /descendant::ds:Signature | enveloped-signature] then
 * exclusive c14n; Reference 2 over this signature's xades:SignedProperties.
 */
export function verifyEnvelopedXades(xml: string, opts: { trustAnchors: string[]; now?: Date }): VerifiedSignature {
  const now = opts.now ?? new Date();
  const anchors = loadCertificates(opts.trustAnchors);
  if (anchors.length === 0) fail('no trust anchor configured');
  const doc = parseXml(xml);
  const root = doc.documentElement as unknown as Element;

  const sigs = select('//ds:Signature', doc) as Node[];
  if (sigs.length === 0) fail('the document is not signed (no ds:Signature)');
  if (sigs.length > 1) fail(`the document carries ${sigs.length} signatures; exactly one is expected`);
  const sig = sigs[0] as Element;
  if (sig.parentNode !== (root as unknown as Node)) fail('the signature is not enveloped in the root element');
  const sigId = attr(sig, 'Id');

  // --- SignedInfo shape ---------------------------------------------------------------------------
  const signedInfo = one('ds:SignedInfo', sig, 'ds:SignedInfo');
  const c14n = attr(one('ds:CanonicalizationMethod', signedInfo, 'CanonicalizationMethod'), 'Algorithm');
  if (c14n !== ALG.excC14n) fail(`unexpected canonicalization ${c14n}; exclusive c14n is required`);
  const sigAlg = attr(one('ds:SignatureMethod', signedInfo, 'SignatureMethod'), 'Algorithm');
  if (sigAlg !== ALG.rsaSha256 && sigAlg !== ALG.rsaSha512) fail(`unexpected signature algorithm ${sigAlg}; RSA-SHA256 is required`);
  const refs = select('ds:Reference', signedInfo) as Element[];
  if (refs.length !== 2) fail(`expected 2 references (document, SignedProperties), found ${refs.length}`);
  const [docRef, propsRef] = refs;
  if (!docRef.hasAttribute('URI') || attr(docRef, 'URI') !== '') fail('the first reference must cover the whole document (URI="")');
  const docTransforms = select('ds:Transforms/ds:Transform', docRef) as Element[];
  const tAlgs = docTransforms.map((t) => attr(t, 'Algorithm'));
  if (tAlgs.length !== 2 || tAlgs[1] !== ALG.excC14n || (tAlgs[0] !== ALG.filter2 && tAlgs[0] !== ALG.enveloped)) {
    fail(`unexpected transforms on the document reference: ${tAlgs.join(', ') || 'none'}`);
  }
  if (tAlgs[0] === ALG.filter2) {
    const xp = select('f2:XPath', docTransforms[0]) as Element[];
    if (xp.length !== 1 || attr(xp[0], 'Filter') !== 'subtract' || (xp[0].textContent ?? '').trim() !== FILTER2_SUBTRACT_SIGNATURES
      || xp[0].lookupNamespaceURI('ds') !== NS.ds) {
      fail('unsupported XPath Filter 2.0 expression (only "subtract /descendant::ds:Signature" is accepted)');
    }
  }
  for (const r of refs) {
    const d = attr(one('ds:DigestMethod', r, 'DigestMethod'), 'Algorithm');
    if (!DIGESTS[d]) fail(`unsupported digest algorithm ${d}`);
  }
  if (attr(propsRef, 'Type') !== ALG.signedPropertiesType) fail('the second reference is not typed as XAdES SignedProperties');
  const propsUri = attr(propsRef, 'URI');
  const propsTransforms = (select('ds:Transforms/ds:Transform', propsRef) as Element[]).map((t) => attr(t, 'Algorithm'));
  if (propsTransforms.some((a) => a !== ALG.excC14n)) fail('unexpected transform on the SignedProperties reference');

  // --- QualifyingProperties / SignedProperties (read now to pick the signer; re-read signed below) --
  const qp = one('ds:Object/xades:QualifyingProperties', sig, 'xades:QualifyingProperties');
  if (sigId && attr(qp, 'Target') !== `#${sigId}`) fail('QualifyingProperties does not target this signature');
  const sp = one('xades:SignedProperties', qp, 'xades:SignedProperties');
  if (!propsUri.startsWith('#') || attr(sp, 'Id') !== propsUri.slice(1)) fail('the SignedProperties reference does not point at this signature\'s SignedProperties');
  const certRef = readSigningCertificate(sp);

  // --- signer: the KeyInfo certificate whose digest SigningCertificateV2 gives ----------------------
  const pool = (select('ds:KeyInfo/ds:X509Data/ds:X509Certificate', sig) as Element[])
    .map((e) => new X509Certificate(derToPem(Buffer.from((e.textContent ?? '').replace(/\s+/g, ''), 'base64'))));
  const signer = pool.find((c) => createHash(certRef.hash).update(c.raw).digest('base64') === certRef.digest)
    ?? anchors.find((c) => createHash(certRef.hash).update(c.raw).digest('base64') === certRef.digest);
  if (!signer) fail('SigningCertificateV2 does not match any certificate in KeyInfo or the trust anchors');
  if (signer.ca) fail('the signing certificate is a CA certificate');
  const ku = keyUsage(signer);
  if (ku !== undefined && !(ku & (px509.KeyUsageFlags.digitalSignature | px509.KeyUsageFlags.nonRepudiation))) {
    fail('the signing certificate may not sign (keyUsage)');
  }
  if (certRef.issuerSerial) {
    const { issuerNameDer, serialHex } = parseIssuerSerial(certRef.issuerSerial);
    if (serialHex !== normaliseSerial(signer.serialNumber)) fail('IssuerSerialV2 serial number does not match the signing certificate');
    if (issuerNameDer && signer.raw.indexOf(issuerNameDer) < 0) fail('IssuerSerialV2 issuer does not match the signing certificate');
  }
  checkValidity(signer, now, 'signing');
  const chain = buildChain(signer, pool, anchors, now);

  // --- cryptographic check with the chain-checked key only ------------------------------------------
  const sx = new SignedXml({ publicCert: signer.toString(), getCertFromKeyInfo: () => null });
  (sx.CanonicalizationAlgorithms as Record<string, unknown>)[ALG.filter2] = Filter2SubtractSignatures;
  sx.loadSignature(sig as unknown as Node);
  let ok = false;
  try {
    ok = sx.checkSignature(xml);
  } catch (e) {
    fail(`signature check failed: ${(e as Error).message.replace(/the signature value \S+ is incorrect/, 'the signature value is incorrect')}`);
  }
  if (!ok) {
    const bad = sx.getReferences().find((r) => r.validationError);
    fail(`signature check failed: ${bad?.validationError?.message ?? 'a reference does not match its digest'}`);
  }
  const signedRefs = sx.getSignedReferences();
  if (signedRefs.length !== 2) fail('unexpected number of signed references');

  // Re-read what the signature covers: SigningCertificateV2 and SigningTime from the signed bytes.
  const signedProps = parseXml(signedRefs[1]).documentElement as unknown as Element;
  if (signedProps.localName !== 'SignedProperties' || signedProps.namespaceURI !== NS.xades) fail('signed reference 2 is not SignedProperties');
  const signedCertRef = readSigningCertificate(signedProps);
  if (signedCertRef.digest !== certRef.digest) fail('signed SigningCertificateV2 differs from the one used');
  const timeText = (select('string(xades:SignedSignatureProperties/xades:SigningTime)', signedProps) as unknown as string).trim();
  const signingTime = new Date(timeText);
  if (!timeText || Number.isNaN(signingTime.getTime())) fail('SigningTime is missing or invalid');
  if (signingTime < new Date(signer.validFrom) || signingTime > new Date(signer.validTo)) {
    fail(`SigningTime ${timeText} is outside the signing certificate's validity`);
  }
  return { signedDocument: signedRefs[0], signer, chain, signingTime };
}

function readSigningCertificate(sp: Element): { hash: string; digest: string; issuerSerial?: Buffer } {
  const certs = select('xades:SignedSignatureProperties/xades:SigningCertificateV2/xades:Cert', sp) as Element[];
  if (certs.length === 0) fail('SigningCertificateV2 is missing from SignedProperties');
  const cert = certs[0];
  const alg = attr(one('xades:CertDigest/ds:DigestMethod', cert, 'CertDigest/DigestMethod'), 'Algorithm');
  const hash = DIGESTS[alg];
  if (!hash) fail(`unsupported SigningCertificateV2 digest ${alg}`);
  const digest = (one('xades:CertDigest/ds:DigestValue', cert, 'CertDigest/DigestValue').textContent ?? '').replace(/\s+/g, '');
  const isv2 = select('xades:IssuerSerialV2', cert) as Element[];
  const issuerSerial = isv2.length ? Buffer.from((isv2[0].textContent ?? '').replace(/\s+/g, ''), 'base64') : undefined;
  return { hash, digest, issuerSerial };
}
