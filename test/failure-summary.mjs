// Prints every failed assertion of the last tap run, with the subtests it sits in and its diagnostic
// block, read back from tap's saved results (.tap/test-results). Run after a failing suite so that
// the end of a long CI log says what failed, instead of only how many.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = '.tap/test-results';
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p); else if (p.endsWith('.tap')) files.push(p);
  }
};
try { walk(root); } catch { console.log('# failure summary: no saved tap results'); process.exit(0); }

let failures = 0;
for (const file of files.sort()) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const path = []; // subtest names by depth
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const depth = (line.length - line.trimStart().length) / 4;
    const sub = /^\s*# Subtest: (.*)$/.exec(line);
    if (sub) { path.length = depth; path[depth] = sub[1]; continue; }
    const bad = /^\s*not ok \d+ - (.*)$/.exec(line);
    if (!bad) continue;
    // a subtest's own "not ok" without diagnostics only repeats its children's failures
    const hasDiag = lines[i + 1]?.trim() === '---';
    if (!hasDiag && path[depth] !== undefined && bad[1].replace(/ # time=.*$/, '') === path[depth]) continue;
    const diag = [];
    if (hasDiag) {
      for (let j = i + 2; j < lines.length && lines[j].trim() !== '...'; j++) diag.push(lines[j]);
    }
    failures++;
    console.log(`\n# FAILED ${relative(root, file).replace(/\.tap$/, '')} > ${[...path.slice(0, depth), bad[1]].join(' > ')}`);
    for (const d of diag.slice(0, 40)) console.log(`#   ${d.trim()}`);
  }
}
console.log(`\n# failure summary: ${failures} failed line(s) in ${files.length} test files`);
