// Starts a real box (both listeners on free loopback ports) for a test, and mTLS clients for it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent } from 'undici';
import { validateConfig } from '../../gateway/src/config/load.js';
import type { DrimboxConfig } from '../../gateway/src/config/schema.js';
import { startBox, type Box, type BoxOptions } from '../../gateway/src/box.js';
import { createLogger } from '../../gateway/src/log.js';
import { testPki } from './pki.js';

export interface TestBoxOptions {
  name?: 'box-a' | 'box-b' | 'box-c';
  pacs: Record<string, unknown>;
  allowedPeers?: string[];
  extra?: Record<string, unknown>;
  boxOptions?: BoxOptions;
}

export async function startTestBox(o: TestBoxOptions): Promise<Box> {
  const pki = await testPki();
  const name = o.name ?? 'box-a';
  const id = pki.boxes[name];
  const raw = {
    box: { name, organization: id.organization, retrieveLocationUid: '1.2.250.1.999.1.1' },
    dataDir: mkdtempSync(join(tmpdir(), `drimbox-${name}-`)),
    user: { port: 0 as unknown as number, publicUrl: 'https://127.0.0.1:1', tls: { cert: id.chain, key: id.key } },
    peer: { port: 0, publicUrl: 'https://127.0.0.1:1', tls: { cert: id.chain, key: id.key, ca: pki.ca.cert }, allowedPeers: o.allowedPeers ?? [pki.demoClient.subjectDn] },
    hl7: { port: 0 },
    admin: { token: randomBytes(24).toString('hex') },
    log: { level: process.env.DRIMBOX_TEST_LOG ?? 'warn' },
    pacs: o.pacs,
    ...o.extra,
  };
  // port 0 = pick a free port; the schema requires 1-65535 for real configs, so patch after validation
  const cfg = validateConfig({ ...raw, user: { ...raw.user, port: 1 }, peer: { ...raw.peer, port: 1 }, hl7: { port: 1 } } as never) as DrimboxConfig;
  cfg.user.port = 0;
  cfg.peer.port = 0;
  cfg.hl7.port = 0;
  return startBox(cfg, { logger: createLogger(cfg.log.level, name), ...o.boxOptions });
}

/** An undici Agent presenting the given client certificate and trusting the dev CA. */
export async function mtlsAgent(identity?: { cert: string; key: string }): Promise<Agent> {
  const pki = await testPki();
  return new Agent({
    connect: {
      ca: readFileSync(pki.ca.cert),
      ...(identity ? { cert: readFileSync(identity.cert), key: readFileSync(identity.key) } : {}),
      servername: 'localhost',
    },
  });
}
