// Certificate files as an operator gets them wrong: unreadable, not PEM, expired, not yet valid, or a
// key that belongs to another certificate. Pure reading, no network.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

const DAY_MS = 86_400_000;

/** Every certificate of a PEM file (a leaf followed by its chain, or a CA bundle). */
export function readCertificates(file: string): X509Certificate[] {
  const pem = readFileSync(file, 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${file}: no PEM certificate in it`);
  return blocks.map((b) => new X509Certificate(b));
}

/** The CN of a node-form subject (`C=FR\nO=…\nCN=…`), else the whole subject. */
const cnOf = (subject: string) => /(?:^|\n)CN=([^\n]*)/.exec(subject)?.[1] ?? subject.replace(/\n/g, ',');
const cn = (c: X509Certificate) => cnOf(c.subject);

/** Why `cert` is not valid at `now`, or undefined. */
function validityProblem(cert: X509Certificate, now: Date): string | undefined {
  if (now < new Date(cert.validFrom)) return `not valid before ${new Date(cert.validFrom).toISOString()}`;
  if (now > new Date(cert.validTo)) return `expired on ${new Date(cert.validTo).toISOString()}`;
  return undefined;
}

/** A listener's or client's identity: the leaf is valid now and `keyFile` is its private key. Throws what is wrong. */
export function checkIdentity(certFile: string, keyFile: string, now = new Date()): string {
  const [leaf] = readCertificates(certFile);
  const bad = validityProblem(leaf, now);
  if (bad) throw new Error(`${certFile} (CN=${cn(leaf)}) ${bad}`);
  let key;
  try {
    key = createPrivateKey(readFileSync(keyFile));
  } catch (e) {
    throw new Error(`${keyFile}: not a readable private key (${(e as Error).message})`);
  }
  if (!leaf.checkPrivateKey(key)) throw new Error(`${keyFile} is not the private key of ${certFile} (CN=${cn(leaf)})`);
  const days = Math.floor((new Date(leaf.validTo).getTime() - now.getTime()) / DAY_MS);
  const sans = leaf.subjectAltName ? `, ${leaf.subjectAltName}` : '';
  return `CN=${cn(leaf)}${sans}, issued by ${cnOf(leaf.issuer)}, valid until ${new Date(leaf.validTo).toISOString().slice(0, 10)} (${days} days), key matches`;
}

/** A trust bundle: at least one certificate valid now. */
export function checkTrustBundle(files: string[], now = new Date()): string {
  const certs = files.flatMap((f) => readCertificates(f));
  const valid = certs.filter((c) => !validityProblem(c, now));
  if (valid.length === 0) throw new Error(`no certificate of ${files.join(', ')} is valid now (${certs.map((c) => `CN=${cn(c)} ${validityProblem(c, now)}`).join('; ')})`);
  return `${valid.length} valid certificate(s): ${valid.map((c) => `CN=${cn(c)}`).join(', ')}`;
}
