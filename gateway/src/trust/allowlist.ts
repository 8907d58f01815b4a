// The DRIM-M allow-list (ANS `ListeBlancheDRIM-M`): its typed form, parsing, signature check, and
// the DN comparison between a peer's certificate and the list's `DNCertificatOperateur`.
import type { X509Certificate } from 'node:crypto';
import xpath from 'xpath';
import { SignatureRejected, verifyEnvelopedXades, parseXml, oneLine } from './xades-verify.js';

/** XML namespace of the ANS list. */
export const ALLOWLIST_NS = 'https://github.com/ansforge/DRIM-M_DATA';

/** One `Domaine`: a box of the network. */
export interface AllowListEntry {
  /** `Identifiant` */
  id: string;
  /** `db`: the box's peer host (DICOMweb over mTLS). */
  boxHost: string;
  /** `vi`: the box's viewer host. */
  viewerHost?: string;
  /** `Denomination`: the operator. */
  name: string;
  /** `DNCertificatOperateur`: subject DN of the box's certificate, as written in the list (RFC 2253 order). */
  operatorDn: string;
  /** `SupportContact` */
  supportContact?: string;
  /** `DateMAJ` */
  updatedAt?: Date;
}

export interface AllowList {
  /** `versionFormat` attribute. */
  versionFormat: string;
  /** `DateDeGeneration` */
  generatedAt: Date;
  entries: AllowListEntry[];
}

export interface AllowListSigner {
  /** RFC 2253 order, e.g. `CN=Liste Blanche DRIM-M,OU=318751275100020,O=AGENCE DU NUMERIQUE EN SANTE,ST=Paris (75),C=FR`. */
  subject: string;
  issuer: string;
  notAfter: Date;
  signingTime: Date;
}

export class AllowListRejected extends Error {
  constructor(public readonly reason: string) {
    super(`allow-list rejected: ${reason}`);
    this.name = 'AllowListRejected';
  }
}

export interface VerifyAllowListOptions {
  /** PEM certificates (bundles allowed) the signer must chain to. */
  trustAnchors: string[];
  /** The signer's subject must match (DN comparison via dnMatches, or a RegExp on the RFC 2253 form). */
  expectedSignerSubject?: string | RegExp;
  now?: Date;
}

const sel = xpath.useNamespaces({ l: ALLOWLIST_NS });

function childText(el: Element, name: string): string | undefined {
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).localName === name) return (n.textContent ?? '').trim();
  }
  return undefined;
}

function parseDate(s: string | undefined, what: string): Date {
  const d = new Date(s ?? '');
  if (!s || Number.isNaN(d.getTime())) throw new AllowListRejected(`${what} is missing or not a date: ${JSON.stringify(s ?? null)}`);
  return d;
}

/** Parse the list's content (no signature check: use verifyAllowList for anything you will trust). */
export function parseAllowList(xml: string): AllowList {
  let doc: Document;
  try {
    doc = parseXml(xml);
  } catch (e) {
    throw new AllowListRejected((e as Error).message);
  }
  const root = doc.documentElement as unknown as Element;
  if (root.localName !== 'ListeBlancheDRIM-M' || (root.namespaceURI ?? '') !== ALLOWLIST_NS) {
    throw new AllowListRejected(`root element is {${root.namespaceURI ?? ''}}${root.localName}, expected {${ALLOWLIST_NS}}ListeBlancheDRIM-M`);
  }
  const versionFormat = root.getAttribute('versionFormat') ?? '';
  if (!/^1\./.test(versionFormat)) throw new AllowListRejected(`unsupported versionFormat ${JSON.stringify(versionFormat)}`);
  const generatedAt = parseDate(childText(root, 'DateDeGeneration'), 'DateDeGeneration');
  const domains = sel('/l:ListeBlancheDRIM-M/l:ListeDomaines/l:Domaine', doc as unknown as Node) as Element[];
  const entries = domains.map((d, i): AllowListEntry => {
    const need = (name: string) => {
      const v = childText(d, name);
      if (!v) throw new AllowListRejected(`Domaine #${i + 1} has no ${name}`);
      return v;
    };
    const maj = childText(d, 'DateMAJ');
    return {
      id: need('Identifiant'),
      boxHost: need('db').toLowerCase(),
      viewerHost: childText(d, 'vi')?.toLowerCase() || undefined,
      name: childText(d, 'Denomination') ?? '',
      operatorDn: need('DNCertificatOperateur'),
      supportContact: childText(d, 'SupportContact') || undefined,
      updatedAt: maj ? parseDate(maj, `DateMAJ of Domaine ${need('Identifiant')}`) : undefined,
    };
  });
  return { versionFormat, generatedAt, entries };
}

/**
 * Verify the XAdES-BASELINE-B signature and certificate chain, then parse the signed content.
 * Throws AllowListRejected with a reason for anything that must not be trusted.
 */
export async function verifyAllowList(xml: string | Buffer, opts: VerifyAllowListOptions): Promise<{ list: AllowList; signer: AllowListSigner; chain: X509Certificate[] }> {
  const text = typeof xml === 'string' ? xml : xml.toString('utf8');
  let verified;
  try {
    verified = verifyEnvelopedXades(text, { trustAnchors: opts.trustAnchors, now: opts.now });
  } catch (e) {
    if (e instanceof SignatureRejected) throw new AllowListRejected(e.message);
    throw new AllowListRejected(`signature could not be checked: ${(e as Error).message}`);
  }
  // Parse what the signature covers, not the raw document.
  const list = parseAllowList(verified.signedDocument);
  const signer: AllowListSigner = {
    subject: oneLine(verified.signer.subject),
    issuer: oneLine(verified.signer.issuer),
    notAfter: new Date(verified.signer.validTo),
    signingTime: verified.signingTime,
  };
  const exp = opts.expectedSignerSubject;
  if (exp !== undefined) {
    const ok = typeof exp === 'string' ? dnMatches(verified.signer.subject, exp) : exp.test(signer.subject);
    if (!ok) throw new AllowListRejected(`signer ${signer.subject} is not the expected signer ${String(exp)}`);
  }
  return { list, signer, chain: verified.chain };
}

// --- Distinguished names ---------------------------------------------------------------------------

const ATTR_ALIASES: Record<string, string> = {
  S: 'ST', STATEORPROVINCENAME: 'ST', COUNTRYNAME: 'C', COMMONNAME: 'CN', ORGANIZATIONNAME: 'O',
  ORGANIZATIONALUNITNAME: 'OU', LOCALITYNAME: 'L', E: 'EMAILADDRESS', '2.5.4.3': 'CN', '2.5.4.6': 'C',
  '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU', '1.2.840.113549.1.9.1': 'EMAILADDRESS',
};

function splitUnescaped(s: string, seps: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) { cur += c + s[++i]; continue; }
    if (c === '"') quoted = !quoted;
    if (!quoted && seps.includes(c)) { out.push(cur); cur = ''; continue; }
    cur += c;
  }
  out.push(cur);
  return out;
}

function unescapeValue(v: string): string {
  let s = v.trim();
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) s = s.slice(1, -1);
  s = s.replace(/\\([0-9a-fA-F]{2})+/g, (m) => Buffer.from(m.replace(/\\/g, ''), 'hex').toString('utf8'));
  return s.replace(/\\(.)/g, '$1');
}

/**
 * Normalised, order-independent form of a DN given either as node's `X509Certificate.subject`
 * (one `K=V` per line, C first) or as RFC 2253/4514 text (`CN=…,OU=…,C=FR`, optional spaces).
 * Attribute names are upper-cased with aliases folded, values trimmed, inner spaces collapsed,
 * NFC-normalised and lower-cased; RDNs are sorted.
 */
export function normaliseDn(dn: string): string {
  const parts = dn.includes('\n') ? dn.split('\n') : splitUnescaped(dn, ',;');
  const rdns = parts.flatMap((p) => splitUnescaped(p, '+')).map((p) => p.trim()).filter(Boolean).map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) return `?=${p.toLowerCase()}`;
    const rawType = p.slice(0, eq).trim().toUpperCase();
    const type = ATTR_ALIASES[rawType] ?? rawType;
    const value = unescapeValue(p.slice(eq + 1))
      .normalize('NFC').replace(/\s+/g, ' ').toLowerCase();
    return `${type}=${value}`;
  });
  return rdns.sort().join('\n');
}

/** True when a certificate subject (node form or RFC 2253) and a listed DN name the same RDNs. */
export function dnMatches(certSubject: string, listedDn: string): boolean {
  return normaliseDn(certSubject) === normaliseDn(listedDn);
}
