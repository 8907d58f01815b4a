// The Debian Chromium the e2e suites drive, and its launch flags: the WebGL path is SwiftShader
// (playwright-core's default), the CPU path disables the 3D APIs. /dev/shm may be small on CI
// machines (a crashed renderer looks like a blank viewer): shared memory goes to /tmp instead.
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';
export type RenderMode = 'webgl' | 'cpu';

export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
}

export function chromiumArgs(mode: RenderMode): string[] {
  const args = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
  if (mode === 'cpu') args.push('--disable-3d-apis');
  return args;
}
