// VIHF: the CI-SIS SAML 2.0 assertion that identifies who calls the DMP (structure of the ANS example's
// WS-Security header), signed enveloped with RSA-SHA256 + exclusive c14n and the signer's X.509 in KeyInfo.
import { randomUUID, X509Certificate } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { NS } from './xds-constants.js';
import { attr, descendant, descendants, element, elements, esc, parseXml, text, type Element } from './dom.js';
import type { Code } from '../cda/types.js';

const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';

/** `INDIRECTE`: the box publishes on its own behalf; `AIR`: a clinician authenticated by PSC. */
export type AuthenticationMode = 'INDIRECTE' | 'AIR';

/** What the box itself is (constant per installation). */
export interface VihfSystem {
  signingCertPem: string;
  signingKeyPem: string;
  /** Issuer (X509SubjectName); defaults to the signing certificate's subject */
  issuer?: string;
  /** Identifiant_Structure: FINESS (or the structure id the DMP knows) */
  structureId: string;
  lpsName: string;
  lpsVersion: string;
  lpsId?: string;
  lpsHomologationId: string;
}

/** Who acts: the report author for publications, the clinician for searches. */
export interface VihfActor {
  nameId: string;                 // RPPS (or other national id)
  displayName: string;            // subject-id
  roles: Code[];                  // profession (e.g. 10 / 1.2.250.1.71.1.2.7) and specialty
  sector: Code;                   // Secteur_Activite, e.g. SA07 / 1.2.250.1.71.4.2.4
  authMode: AuthenticationMode;
  purposeOfUse?: 'normal' | 'bris_de_glace' | 'centre_15';
}

export interface VihfInput {
  system: VihfSystem;
  actor: VihfActor;
  /** XDS patient id (INS^^^&oid&ISO^NH); omitted for non-patient requests */
  patientId?: string;
  now?: Date;
  lifetimeSeconds?: number;
}

const PURPOSE_DISPLAY: Record<string, string> = { normal: 'Acces normal', bris_de_glace: 'Acces en urgence', centre_15: 'Acces regulation' };

function simple(name: string, value: string): string {
  return `<saml2:Attribute Name="${esc(name)}"><saml2:AttributeValue>${esc(value)}</saml2:AttributeValue></saml2:Attribute>`;
}

function ceValue(tag: string, c: Code, codeSystemName = ''): string {
  return (
    `<saml2:AttributeValue><${tag} xmlns="${NS.hl7}" xmlns:xsi="${NS.xsi}" xsi:type="CE" code="${esc(c.code)}" codeSystem="${esc(c.codeSystem)}"` +
    ` codeSystemName="${esc(c.codeSystemName ?? codeSystemName)}" displayName="${esc(c.displayName ?? '')}"/></saml2:AttributeValue>`
  );
}

function subjectDn(certPem: string): string {
  return new X509Certificate(certPem).subject.split('\n').reverse().join(', ');
}

/** Build and sign a VIHF assertion (returns the saml2:Assertion element as XML text). */
export function buildVihf(o: VihfInput): string {
  const now = o.now ?? new Date();
  const id = `_${randomUUID()}`;
  const instant = now.toISOString();
  const notOnOrAfter = new Date(now.getTime() + (o.lifetimeSeconds ?? 300) * 1000).toISOString();
  const a = o.actor;
  const s = o.system;
  const purpose = a.purposeOfUse ?? 'normal';
  const authnDecl = a.authMode === 'AIR' ? `<saml2:AuthnContextDecl>APP_BROWSER_AUTH</saml2:AuthnContextDecl>` : '';
  const xml =
    `<saml2:Assertion xmlns:saml2="${NS.saml2}" xmlns:xsi="${NS.xsi}" ID="${id}" IssueInstant="${instant}" Version="2.0">` +
    `<saml2:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName">${esc(s.issuer ?? subjectDn(s.signingCertPem))}</saml2:Issuer>` +
    `<saml2:Subject><saml2:NameID>${esc(a.nameId)}</saml2:NameID></saml2:Subject>` +
    `<saml2:Conditions NotBefore="${instant}" NotOnOrAfter="${notOnOrAfter}"/>` +
    `<saml2:AuthnStatement AuthnInstant="${instant}"><saml2:AuthnContext>` +
    `<saml2:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient</saml2:AuthnContextClassRef>${authnDecl}` +
    `</saml2:AuthnContext></saml2:AuthnStatement>` +
    `<saml2:AttributeStatement>` +
    simple('VIHF_Version', '3.0') +
    simple('Secteur_Activite', `${a.sector.code}^${a.sector.codeSystem}`) +
    simple('Ressource_URN', 'urn:dmp') +
    simple('urn:oasis:names:tc:xspa:1.0:subject:subject-id', a.displayName) +
    simple('Identifiant_Structure', s.structureId) +
    (s.lpsId ? simple('LPS_ID', s.lpsId) : '') +
    simple('LPS_Nom', s.lpsName) +
    simple('LPS_ID_HOMOLOGATION_DMP', s.lpsHomologationId) +
    simple('LPS_Version', s.lpsVersion) +
    (o.patientId ? simple('urn:oasis:names:tc:xacml:2.0:resource:resource-id', o.patientId) : '') +
    simple('Authentification_Mode', a.authMode) +
    `<saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse">` +
    ceValue('PurposeOfUse', { code: purpose, codeSystem: '1.2.250.1.213.1.1.4.248', displayName: PURPOSE_DISPLAY[purpose] }, 'mode acces VIHF 1.0') +
    `</saml2:Attribute>` +
    `<saml2:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role">` +
    a.roles.map((r) => ceValue('Role', r)).join('') +
    `</saml2:Attribute>` +
    `</saml2:AttributeStatement></saml2:Assertion>`;

  const sig = new SignedXml({
    privateKey: s.signingKeyPem,
    publicCert: s.signingCertPem,
    signatureAlgorithm: RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
  sig.addReference({ xpath: "/*[local-name(.)='Assertion']", transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: SHA256 });
  // SAML 2.0 schema order: ds:Signature right after Issuer
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: "/*/*[local-name(.)='Issuer']", action: 'after' } });
  return sig.getSignedXml();
}

export class VihfError extends Error {
  constructor(
    message: string,
    /** WS-Security fault subcode */
    readonly faultCode: 'wsse:InvalidSecurity' | 'wsse:FailedCheck' | 'wsse:InvalidSecurityToken' | 'wsse:SecurityTokenUnavailable' = 'wsse:FailedCheck',
  ) {
    super(message);
    this.name = 'VihfError';
  }
}

export interface VerifiedVihf {
  id: string;
  issuer: string;
  nameId: string;
  signerSubject: string;
  /** attribute name → values (text, or `code^codeSystem` for coded values) */
  attributes: Map<string, string[]>;
  authMode: string;
  patientId?: string;
}

/** Check the signer certificate chains to one of the trust anchors (direct issuance) and is in date. */
function checkChain(certPem: string, trustAnchorsPem: string[], now: Date): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new VihfError('VIHF signer certificate is unreadable', 'wsse:InvalidSecurityToken');
  }
  if (new Date(cert.validFrom) > now || new Date(cert.validTo) < now) throw new VihfError('VIHF signer certificate is out of date', 'wsse:InvalidSecurityToken');
  for (const pem of trustAnchorsPem) {
    const ca = new X509Certificate(pem);
    if (cert.fingerprint256 === ca.fingerprint256) return cert;
    if (cert.checkIssued(ca) && cert.verify(ca.publicKey)) return cert;
  }
  throw new VihfError('VIHF signer certificate is not issued by a trusted authority', 'wsse:InvalidSecurityToken');
}

/**
 * Verify a VIHF assertion: enveloped signature over the assertion itself, signer certificate chained to
 * the trust anchors, validity window; returns the attributes read from the *signed* content only.
 */
export function verifyVihf(assertionXml: string, trustAnchorsPem: string[], now = new Date()): VerifiedVihf {
  let doc;
  try {
    doc = parseXml(assertionXml);
  } catch (e) {
    throw new VihfError(`VIHF is not acceptable XML (${(e as Error).message})`, 'wsse:InvalidSecurityToken');
  }
  const root = doc.documentElement!;
  if (root.localName !== 'Assertion' || root.namespaceURI !== NS.saml2) throw new VihfError('no SAML 2.0 assertion', 'wsse:InvalidSecurityToken');
  const signature = elements(root, 'Signature').find((e) => e.namespaceURI === NS.ds);
  if (!signature) throw new VihfError('VIHF is not signed', 'wsse:FailedCheck');
  const certB64 = text(descendant(signature, 'X509Certificate'));
  if (!certB64) throw new VihfError('VIHF signature carries no certificate', 'wsse:SecurityTokenUnavailable');
  const certPem = `-----BEGIN CERTIFICATE-----\n${certB64.replace(/\s+/g, '').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
  const cert = checkChain(certPem, trustAnchorsPem, now);

  const v = new SignedXml({ publicCert: certPem });
  v.loadSignature(signature as unknown as Node);
  let ok = false;
  try {
    ok = v.checkSignature(assertionXml);
  } catch (e) {
    throw new VihfError(`VIHF signature invalid: ${(e as Error).message}`, 'wsse:FailedCheck');
  }
  if (!ok) throw new VihfError('VIHF signature invalid', 'wsse:FailedCheck');
  const id = attr(root, 'ID') ?? '';
  const refs = v.getSignedReferences();
  // the one signed reference must be the whole assertion (defeats signature wrapping)
  const signedAssertion = refs.length === 1 ? parseXml(refs[0]).documentElement! : undefined;
  if (!signedAssertion || signedAssertion.localName !== 'Assertion' || attr(signedAssertion, 'ID') !== id) {
    throw new VihfError('VIHF signature does not cover the assertion', 'wsse:FailedCheck');
  }

  const conditions = element(signedAssertion, 'Conditions');
  const nb = attr(conditions, 'NotBefore');
  const noa = attr(conditions, 'NotOnOrAfter');
  const skew = 120_000;
  if (nb && new Date(nb).getTime() - skew > now.getTime()) throw new VihfError('VIHF not yet valid', 'wsse:InvalidSecurityToken');
  if (noa && new Date(noa).getTime() + skew <= now.getTime()) throw new VihfError('VIHF expired', 'wsse:InvalidSecurityToken');

  const attributes = new Map<string, string[]>();
  for (const at of descendants(signedAssertion, 'Attribute')) {
    const vals = elements(at, 'AttributeValue').map((av: Element) => {
      const coded = elements(av)[0];
      return coded ? `${attr(coded, 'code') ?? ''}^${attr(coded, 'codeSystem') ?? ''}` : text(av);
    });
    attributes.set(attr(at, 'Name') ?? '', vals);
  }
  const required = [
    'VIHF_Version',
    'Secteur_Activite',
    'Identifiant_Structure',
    'LPS_Nom',
    'LPS_Version',
    'LPS_ID_HOMOLOGATION_DMP',
    'Authentification_Mode',
    'urn:oasis:names:tc:xspa:1.0:subject:subject-id',
    'urn:oasis:names:tc:xacml:2.0:subject:role',
    'urn:oasis:names:tc:xspa:1.0:subject:purposeofuse',
  ];
  for (const r of required) {
    if (!attributes.get(r)?.some((x) => x && x !== '^')) throw new VihfError(`VIHF attribute ${r} is missing`, 'wsse:InvalidSecurityToken');
  }
  const authMode = attributes.get('Authentification_Mode')![0];
  if (!['INDIRECTE', 'AIR', 'DIRECTE'].includes(authMode)) throw new VihfError(`unknown Authentification_Mode ${authMode}`, 'wsse:InvalidSecurityToken');
  const nameId = text(descendant(signedAssertion, 'NameID'));
  if (!nameId) throw new VihfError('VIHF Subject/NameID is missing', 'wsse:InvalidSecurityToken');
  return {
    id,
    issuer: text(element(signedAssertion, 'Issuer')),
    nameId,
    signerSubject: cert.subject,
    attributes,
    authMode,
    patientId: attributes.get('urn:oasis:names:tc:xacml:2.0:resource:resource-id')?.[0],
  };
}
