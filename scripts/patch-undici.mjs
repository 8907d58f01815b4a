// postinstall: applies the upstream fix for undici#5360 (merged as nodejs/undici#5389, released only
// in undici 8) to the pinned undici 7. Without it, a response whose body the reader holds back
// (backpressure) and whose server then closes the connection (Orthanc answers multipart retrieves with
// `Connection: close`) throws an uncatchable AssertionError from the socket 'end' handler and kills
// the process. The fix removes `assert(!this.paused)` from Parser.finish(): llhttp_finish() already
// reports the paused state, which the next lines handle.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let root;
try {
  root = dirname(require.resolve('undici/package.json'));
} catch {
  process.exit(0); // undici not installed (yet): nothing to patch
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const file = join(root, 'lib', 'dispatcher', 'client-h1.js');
if (!version.startsWith('7.') || !existsSync(file)) process.exit(0);
const src = readFileSync(file, 'utf8');
const unpatched = /(finish \(\) \{\n\s*assert\(currentParser === null\)\n\s*assert\(this\.ptr != null\)\n)\s*assert\(!this\.paused\)\n/;
if (unpatched.test(src)) {
  writeFileSync(file, src.replace(unpatched, '$1'));
  console.log(`patch-undici: applied the undici#5360 fix to undici ${version}`);
} else if (!/finish \(\) \{\n\s*assert\(currentParser === null\)\n\s*assert\(this\.ptr != null\)\n\n/.test(src)) {
  console.warn(`patch-undici: undici ${version} has an unexpected Parser.finish(); check nodejs/undici#5360 by hand`);
}
