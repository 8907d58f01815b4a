// Starts a real box (both listeners on free loopback ports) for a test, and mTLS clients for it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent } from 'undici';
import type Database from 'better-sqlite3';
import { validateConfig } from '../../gateway/src/config/load.js';
import type { DrimboxConfig } from '../../gateway/src/config/schema.js';
import { startBox, type Box, type BoxOptions } from '../../gateway/src/box.js';
import { createLogger } from '../../gateway/src/log.js';
import { testPki } from './pki.js';

/** The SQLite handle under a box's store, for tests that read or poke rows directly; throws on PostgreSQL. */
export function sqliteOf(box: Pick<Box, 'store'>): Database.Database {
  if (!box.store.sqlite) throw new Error(`this test reads SQLite rows, but the box's store is ${box.store.dialect}`);
  return box.store.sqlite;
}

export interface TestBoxOptions {
  name?: 'box-a' | 'box-b' | 'box-c';
  pacs: Record<string, unknown>;
  allowedPeers?: string[];
  extra?: Record<string, unknown>;
  boxOptions?: BoxOptions;
  /** the user listener on this port (picked by the test) and its publicUrl naming it, so a browser's Origin is the box's own */
  userPort?: number;
}

/** What makes a test box's configuration (`startTestBox` without the run-time options). */
export type TestBoxConfigOptions = Omit<TestBoxOptions, 'boxOptions'>;

/**
 * A test box's configuration as a config file holds it (before validation): the dev PKI identity of
 * `name`, a fresh data directory, `extra`'s top-level sections over the defaults. The listener ports
 * are placeholders (1): a config file cannot say 0, so a test sets the real ones (see `testBoxConfig`).
 */
export async function rawTestBoxConfig(o: TestBoxConfigOptions): Promise<Record<string, unknown>> {
  const pki = await testPki();
  const name = o.name ?? 'box-a';
  const id = pki.boxes[name];
  return {
    box: { name, organization: id.organization, retrieveLocationUid: '1.2.250.1.999.1.1' },
    dataDir: typeof o.extra?.dataDir === 'string' ? o.extra.dataDir : mkdtempSync(join(tmpdir(), `drimbox-${name}-`)),
    user: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: id.chain, key: id.key } },
    peer: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: id.chain, key: id.key, ca: pki.ca.cert }, allowedPeers: o.allowedPeers ?? [pki.demoClient.subjectDn] },
    hl7: { port: 1, allowedSenders: ['127.0.0.1'] },
    admin: { token: randomBytes(24).toString('hex') },
    log: { level: process.env.DRIMBOX_TEST_LOG ?? 'warn' },
    pacs: o.pacs,
    ...o.extra,
  };
}

/** A test box's validated configuration, every listener on port 0 (a free port, picked at start). */
export async function testBoxConfig(o: TestBoxConfigOptions): Promise<DrimboxConfig> {
  // the schema requires 1-65535 for real configs, so port 0 is patched in after validation
  const cfg = validateConfig(await rawTestBoxConfig(o) as never) as DrimboxConfig;
  cfg.user.port = 0;
  if (o.userPort) { cfg.user.port = o.userPort; cfg.user.publicUrl = `https://127.0.0.1:${o.userPort}`; }
  cfg.peer.port = 0;
  if (cfg.hl7) cfg.hl7.port = 0;
  return cfg;
}

export async function startTestBox(o: TestBoxOptions): Promise<Box> {
  const cfg = await testBoxConfig(o);
  return startBox(cfg, { logger: createLogger(cfg.log.level, cfg.box.name), ...o.boxOptions });
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
