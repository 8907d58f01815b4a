// CLI: `npx tsx certs/make-dev-pki.ts [dir] [--box NAME ...]` — create (idempotently) the dev PKI.
import { resolve } from 'node:path';
import { ensureDevPki } from './pki.js';

const args = process.argv.slice(2);
const boxes: string[] = [];
let dir = 'certs/out';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--box') boxes.push(args[++i]);
  else dir = args[i];
}
if (boxes.length === 0) boxes.push('box-a', 'box-b');
const pki = await ensureDevPki(resolve(dir), { boxes });
console.log(JSON.stringify(pki, null, 2));
