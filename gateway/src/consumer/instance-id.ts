// The name this gateway instance gives itself in shared tables (fetch leases, readers, import jobs):
// stable across its restarts — so what it held before dying is recognised as its own and released at
// once — and distinct between instances: host name, data directory and user port (two instances on
// one host differ by one of them).
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';

export function instanceId(dataDir: string, userPort: number): string {
  const dir = createHash('sha256').update(resolve(dataDir)).digest('base64url').slice(0, 10);
  return `${hostname()}/${dir}:${userPort}`;
}
