// CLI: `npx tsx certs/make-dev-pki.ts [dir] [--box NAME ...] [--revoke CERT ...]` — create (idempotently)
// the dev PKI; --revoke adds certificates to the root CA's CRL (`<dir>/ca.crl`).
import { resolve } from 'node:path';
import { ensureDevPki, revokeDevCertificates } from './pki.js';

const args = process.argv.slice(2);
const boxes: string[] = [];
const revoke: string[] = [];
let dir = 'certs/out';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--box') boxes.push(args[++i]);
  else if (args[i] === '--revoke') revoke.push(resolve(args[++i]));
  else dir = args[i];
}
if (boxes.length === 0) boxes.push('box-a', 'box-b');
const pki = await ensureDevPki(resolve(dir), { boxes });
if (revoke.length) await revokeDevCertificates(pki, revoke);
console.log(JSON.stringify(pki, null, 2));
