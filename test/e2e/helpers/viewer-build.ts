// Builds the viewer into viewer/dist only when its sources are newer than the build: the consumer
// box serves that folder, and rebuilding it (vite empties the folder first) while a box is serving it
// would break pages of a test running at the same time.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = 0;
  for (const e of readdirSync(path)) m = Math.max(m, newestMtime(join(path, e)));
  return m;
}

/** Returns the build time in ms (0 when the existing build is up to date). */
export function ensureViewerBuilt(repo: string): number {
  const index = join(repo, 'viewer', 'dist', 'index.html');
  const sources = [join(repo, 'viewer', 'src'), join(repo, 'viewer', 'index.html'), join(repo, 'viewer', 'screening.html'), join(repo, 'viewer', 'vite.config.ts')];
  if (existsSync(index) && statSync(index).mtimeMs >= Math.max(...sources.map(newestMtime))) return 0;
  const t0 = Date.now();
  execFileSync(join(repo, 'node_modules', '.bin', 'vite'), ['build', '--config', 'viewer/vite.config.ts', '--logLevel', 'error'], { cwd: repo, stdio: 'inherit' });
  return Date.now() - t0;
}
