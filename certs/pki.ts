// Development PKI: a CA and the certificates every local box, the registry and the demo client need.
// Uses @peculiar/x509 over Node's webcrypto; RSA-2048 everywhere because XAdES (RSA-SHA256) and mTLS
// both accept it. Nothing here is for production: real networks use IGC-Santé certificates.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, X509Certificate, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const RSA: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};

/** A certificate authority able to issue certificates. */
export interface CaBundle {
  certPem: string;
  keyPem: string;
  /** Subject in RFC 2253 form (most specific RDN first, comma-separated), e.g. `CN=DRIMbox Dev CA,O=DRIMbox dev`. */
  subject: string;
  /** Certificates between this CA and the root, excluding itself (empty for a root). PEM each. */
  chainPems?: string[];
}

export type CertUsage = 'server' | 'client' | 'server+client' | 'signing' | 'ca';

export interface IssueOptions {
  commonName: string;
  organization?: string;
  organizationalUnit?: string;
  /** Country (2 letters); defaults to FR. */
  country?: string;
  /** DNS names and IP addresses. Server certificates get `localhost` and `127.0.0.1` added. */
  sans?: string[];
  usage: Exclude<CertUsage, 'ca'> | 'ca';
  days?: number;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  /**
   * Subject DN in RFC 2253 order as the ANS allow-list writes `DNCertificatOperateur`:
   * most specific first, comma-separated, no spaces, e.g. `CN=box-a,OU=dev,O=Centre A,C=FR`.
   * Node's `X509Certificate.subject` gives the same RDNs in the reverse order, one per line
   * (`C=FR\nO=Centre A\nOU=dev\nCN=box-a`); `nodeSubject` is that exact string.
   */
  subjectDn: string;
  nodeSubject: string;
}

function toPem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  return (await webcrypto.subtle.importKey('pkcs8', pemBody(pem), RSA, true, ['sign'])) as unknown as CryptoKey;
}

/** Ordered name, least specific first in the certificate (C, ST, O, OU, CN) — the usual X.509 order. */
function buildName(o: { commonName: string; organization?: string; organizationalUnit?: string; country?: string }): x509.JsonName {
  const name: x509.JsonName = [{ C: [o.country ?? 'FR'] }];
  if (o.organization) name.push({ O: [o.organization] });
  if (o.organizationalUnit) name.push({ OU: [o.organizationalUnit] });
  name.push({ CN: [o.commonName] });
  return name;
}

/** RFC 2253 form of a node `X509Certificate.subject` string (one `K=V` per line, least specific first). */
export function rfc2253FromNodeSubject(nodeSubject: string): string {
  return nodeSubject.split('\n').filter(Boolean).reverse().join(',');
}

function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f; // positive INTEGER
  if (b[0] === 0) b[0] = 1;
  return b.toString('hex');
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return toPem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key as never));
}

function window(days: number): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Date.now() - 60 * 60 * 1000); // tolerate small clock skew
  const notAfter = new Date(Date.now() + days * 24 * 60 * 60 * 1000);
  return { notBefore, notAfter };
}

/** A self-signed root CA. */
export async function createCa(name: string, opts: { organization?: string; days?: number } = {}): Promise<CaBundle> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: buildName({ commonName: name, organization: opts.organization ?? 'DRIMbox dev' }),
    ...window(opts.days ?? 3650),
    keys,
    signingAlgorithm: RSA,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = cert.toString('pem') + '\n';
  return { certPem, keyPem: await exportKeyPem(keys.privateKey), subject: rfc2253FromNodeSubject(new X509Certificate(certPem).subject) };
}

/** Issue a certificate signed by `ca`. `usage: 'ca'` makes a subordinate CA (pathLen 0). */
export async function issueCertificate(ca: CaBundle, o: IssueOptions): Promise<IssuedCertificate> {
  const keys = await newKeys();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKey(ca.keyPem);
  const exts: x509.Extension[] = [
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  const K = x509.KeyUsageFlags;
  switch (o.usage) {
    case 'ca':
      exts.push(new x509.BasicConstraintsExtension(true, 0, true));
      exts.push(new x509.KeyUsagesExtension(K.keyCertSign | K.cRLSign, true));
      break;
    case 'signing':
      exts.push(new x509.BasicConstraintsExtension(false, undefined, true));
      exts.push(new x509.KeyUsagesExtension(K.digitalSignature | K.nonRepudiation, true));
      break;
    default: {
      exts.push(new x509.BasicConstraintsExtension(false, undefined, true));
      exts.push(new x509.KeyUsagesExtension(K.digitalSignature | K.keyEncipherment, true));
      const eku: string[] = [];
      if (o.usage === 'server' || o.usage === 'server+client') eku.push(x509.ExtendedKeyUsage.serverAuth);
      if (o.usage === 'client' || o.usage === 'server+client') eku.push(x509.ExtendedKeyUsage.clientAuth);
      exts.push(new x509.ExtendedKeyUsageExtension(eku, false));
    }
  }
  const sans = [...(o.sans ?? [])];
  if (o.usage === 'server' || o.usage === 'server+client') {
    for (const d of ['localhost', '127.0.0.1']) if (!sans.includes(d)) sans.push(d);
  }
  if (sans.length) {
    exts.push(new x509.SubjectAlternativeNameExtension(sans.map((v) => ({ type: isIP(v) ? 'ip' : 'dns', value: v }) as x509.JsonGeneralName), false));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: buildName(o),
    issuer: caCert.subjectName,
    ...window(o.days ?? 825),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: RSA,
    extensions: exts,
  });
  const certPem = cert.toString('pem') + '\n';
  const nodeSubject = new X509Certificate(certPem).subject;
  return { certPem, keyPem: await exportKeyPem(keys.privateKey), subjectDn: rfc2253FromNodeSubject(nodeSubject), nodeSubject };
}

/** A CRL signed by `ca` listing the given serial numbers (hex); valid `days` from now. PEM. */
export async function issueCrl(ca: CaBundle, revokedSerials: string[], opts: { days?: number } = {}): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const now = new Date();
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subjectName,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + (opts.days ?? 30) * 24 * 60 * 60 * 1000),
    entries: revokedSerials.map((serialNumber) => ({ serialNumber: serialNumber.toLowerCase(), revocationDate: now, reason: x509.X509CrlReason.keyCompromise })),
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(caCert)],
    signingKey: await importPrivateKey(ca.keyPem),
    signingAlgorithm: RSA,
  });
  return toPem('X509 CRL', crl.rawData);
}

/** Serial number (hex) of a PEM certificate file. */
export function serialOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).serialNumber.toLowerCase();
}

/**
 * Revokes certificates of the dev PKI: re-issues the root CA's CRL (`dir/ca.crl`) with their serials
 * added to those already listed. Boxes configured with this CRL refuse them once they reload it.
 */
export async function revokeDevCertificates(pki: DevPki, certFiles: string[]): Promise<void> {
  const listed = existsSync(pki.crl) ? new x509.X509Crl(readFileSync(pki.crl, 'utf8')).entries.map((e) => e.serialNumber.toLowerCase()) : [];
  const serials = [...new Set([...listed, ...certFiles.map(serialOf)])];
  const root: CaBundle = { certPem: readFileSync(pki.ca.cert, 'utf8'), keyPem: readFileSync(pki.ca.key, 'utf8'), subject: pki.ca.subjectDn };
  writeFileSync(pki.crl, await issueCrl(root, serials));
}

/** Files of one identity: certificate, private key, and `chain` = certificate followed by its issuers (no root). */
export interface IdentityFiles {
  cert: string;
  key: string;
  /** Leaf + intermediates, for TLS `cert` or XAdES KeyInfo. */
  chain: string;
  subjectDn: string;
}

export interface DevPki {
  dir: string;
  /** The root CA that every box, the registry and clients trust (TLS and allow-list trust anchor). */
  ca: { cert: string; key: string; subjectDn: string };
  /** Subordinate CA that issues the allow-list signing certificate. */
  signingCa: { cert: string; key: string; subjectDn: string };
  /** Allow-list signing certificate (registry); its `chain` holds signer + signing CA. */
  signer: IdentityFiles;
  /** Registry HTTPS server certificate. */
  registry: IdentityFiles;
  /** Per box: server+client certificate (CN = box name, O = the box's organisation). */
  boxes: Record<string, IdentityFiles & { organization: string }>;
  /** A client identity for demos and tests (e.g. curl against a peer listener). */
  demoClient: IdentityFiles;
  /** The sandbox DMP simulator's HTTPS server certificate. */
  dmpSimulator: IdentityFiles;
  /** The root CA's certificate revocation list (PEM); it lists `revokedBox`. */
  crl: string;
  /** A box identity (CN=box-revoked) the root CA has revoked: boxes checking `crl` refuse it. */
  revokedBox: IdentityFiles & { organization: string };
}

export interface DevPkiOptions {
  boxes: string[];
  /** Organisation per box; default `Centre <box>`. */
  organizations?: Record<string, string>;
}

function writeSecret(file: string, data: string): void {
  writeFileSync(file, data, { mode: 0o600 });
  chmodSync(file, 0o600);
}

function subjectOf(certFile: string): string {
  return rfc2253FromNodeSubject(new X509Certificate(readFileSync(certFile)).subject);
}

/** Organisation name used for a box in the dev PKI. */
export function devBoxOrganization(box: string): string {
  return `Centre ${box}`;
}

/**
 * Create (if missing) the whole dev PKI under `dir`. Idempotent: existing files are kept, so running
 * it again — or with more boxes — only adds what is missing. File layout:
 * `ca.crt/ca.key`, `signing-ca.crt/.key`, `allowlist-signer.{crt,key,chain.pem}`,
 * `registry.{crt,key,chain.pem}`, `boxes/<box>.{crt,key,chain.pem}`, `demo-client.{crt,key,chain.pem}`,
 * `dmp-simulator.{crt,key,chain.pem}`, `revoked-box.{crt,key,chain.pem}` and the root's CRL `ca.crl`
 * (listing revoked-box).
 */
export async function ensureDevPki(dir: string, opts: DevPkiOptions): Promise<DevPki> {
  mkdirSync(join(dir, 'boxes'), { recursive: true, mode: 0o700 });
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  if (!existsSync(caCert) || !existsSync(caKey)) {
    const ca = await createCa('DRIMbox Dev Root CA');
    writeFileSync(caCert, ca.certPem);
    writeSecret(caKey, ca.keyPem);
  }
  const root: CaBundle = { certPem: readFileSync(caCert, 'utf8'), keyPem: readFileSync(caKey, 'utf8'), subject: subjectOf(caCert) };

  const sCaCert = join(dir, 'signing-ca.crt');
  const sCaKey = join(dir, 'signing-ca.key');
  if (!existsSync(sCaCert) || !existsSync(sCaKey)) {
    const sub = await issueCertificate(root, { commonName: 'DRIMbox Dev Allow-list Signing CA', organization: 'DRIMbox dev', usage: 'ca', days: 3650 });
    writeFileSync(sCaCert, sub.certPem);
    writeSecret(sCaKey, sub.keyPem);
  }
  const signingCa: CaBundle = { certPem: readFileSync(sCaCert, 'utf8'), keyPem: readFileSync(sCaKey, 'utf8'), subject: subjectOf(sCaCert) };

  async function identity(base: string, issuer: CaBundle, o: IssueOptions, chainExtra: string[]): Promise<IdentityFiles> {
    const cert = `${base}.crt`;
    const key = `${base}.key`;
    const chain = `${base}.chain.pem`;
    if (!existsSync(cert) || !existsSync(key)) {
      const issued = await issueCertificate(issuer, o);
      writeFileSync(cert, issued.certPem);
      writeSecret(key, issued.keyPem);
    }
    if (!existsSync(chain)) writeFileSync(chain, [readFileSync(cert, 'utf8'), ...chainExtra].join(''));
    return { cert, key, chain, subjectDn: subjectOf(cert) };
  }

  const signer = await identity(join(dir, 'allowlist-signer'), signingCa,
    { commonName: 'Liste Blanche DRIM-M (dev)', organization: 'DRIMbox dev', organizationalUnit: 'registry', usage: 'signing', days: 1825 },
    [signingCa.certPem]);
  const registry = await identity(join(dir, 'registry'), root,
    { commonName: 'registry.localhost', organization: 'DRIMbox dev', usage: 'server', sans: ['registry.localhost'] }, []);
  const demoClient = await identity(join(dir, 'demo-client'), root,
    { commonName: 'demo-client', organization: 'DRIMbox dev', usage: 'client' }, []);
  const dmpSimulator = await identity(join(dir, 'dmp-simulator'), root,
    { commonName: 'dmp-simulator', organization: 'DRIMbox sandbox', usage: 'server' }, []);
  const boxes: DevPki['boxes'] = {};
  for (const box of opts.boxes) {
    const organization = opts.organizations?.[box] ?? devBoxOrganization(box);
    const id = await identity(join(dir, 'boxes', box), root,
      { commonName: box, organization, usage: 'server+client', sans: /^[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(box) ? [box, `${box}.localhost`] : [] }, []);
    boxes[box] = { ...id, organization };
  }
  const revokedBox = { ...await identity(join(dir, 'revoked-box'), root,
    { commonName: 'box-revoked', organization: devBoxOrganization('box-revoked'), usage: 'server+client' }, []), organization: devBoxOrganization('box-revoked') };
  const crl = join(dir, 'ca.crl');
  const pki: DevPki = {
    dir,
    ca: { cert: caCert, key: caKey, subjectDn: root.subject },
    signingCa: { cert: sCaCert, key: sCaKey, subjectDn: signingCa.subject },
    signer,
    registry,
    boxes,
    demoClient,
    dmpSimulator,
    crl,
    revokedBox,
  };
  // a CRL close to its nextUpdate is re-issued, keeping what it lists
  const fresh = existsSync(crl) && (new x509.X509Crl(readFileSync(crl, 'utf8')).nextUpdate?.getTime() ?? 0) > Date.now() + 7 * 24 * 60 * 60 * 1000;
  if (!fresh) await revokeDevCertificates(pki, [revokedBox.cert]);
  return pki;
}
