// The demo DRIM-M network on one machine, every server on 127.0.0.1 and a free port: dev PKI,
// a source box whose PACS is a folder store seeded with the demo studies, and (as the sandbox grows)
// the DMP and PSC simulators, the registry and a consumer box. Writes sandbox/.run/manifest.json.
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ensureDevPki, type DevPki } from '../certs/pki.js';
import { validateConfig } from '../gateway/src/config/load.js';
import type { DrimboxConfig } from '../gateway/src/config/schema.js';
import { startBox, type Box } from '../gateway/src/box.js';
import { createLogger } from '../gateway/src/log.js';
import { demoStudies } from './demo-data/catalogue.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');

export interface DemoNetworkOptions {
  /** where state lives (default sandbox/.run) */
  runDir?: string;
  /** where the dev PKI lives (default certs/out) */
  pkiDir?: string;
  logLevel?: string;
}

export interface BoxManifest {
  name: string;
  roles: string[];
  userUrl: string;
  peerUrl: string;
  mllp: { host: string; port: number };
  cert: string;
  key: string;
  ca: string;
  adminToken: string;
}

export interface DemoManifest {
  startedAt: string;
  boxes: BoxManifest[];
  demoClient: { cert: string; key: string; ca: string; subjectDn: string };
  studies: { box: string; studyInstanceUid: string; patientIns: string; modality: string; description: string }[];
}

export interface DemoNetwork {
  manifest: DemoManifest;
  boxes: Record<string, Box>;
  pki: DevPki;
  close(): Promise<void>;
}

export async function startDemoNetwork(o: DemoNetworkOptions = {}): Promise<DemoNetwork> {
  const runDir = o.runDir ?? join(ROOT, 'sandbox', '.run');
  const pki = await ensureDevPki(o.pkiDir ?? join(ROOT, 'certs', 'out'), { boxes: ['box-a', 'box-b'] });
  const logLevel = o.logLevel ?? 'warn';
  mkdirSync(runDir, { recursive: true });

  const boxA = await startDemoBox('box-a', { runDir, pki, logLevel, pacsDir: join(runDir, 'box-a', 'pacs') });
  const studies = await seedFolderPacs(boxA);

  const manifest: DemoManifest = {
    startedAt: new Date().toISOString(),
    boxes: [describe(boxA, pki)],
    demoClient: { cert: pki.demoClient.cert, key: pki.demoClient.key, ca: pki.ca.cert, subjectDn: pki.demoClient.subjectDn },
    studies: studies.map((s) => ({ box: 'box-a', ...s })),
  };
  writeFileSync(join(runDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
  return {
    manifest,
    boxes: { 'box-a': boxA },
    pki,
    async close() {
      await boxA.close();
    },
  };
}

async function startDemoBox(name: string, o: { runDir: string; pki: DevPki; logLevel: string; pacsDir: string }): Promise<Box> {
  const id = o.pki.boxes[name];
  const raw = {
    box: { name, organization: id.organization, retrieveLocationUid: '1.2.250.1.999.1.1' },
    dataDir: join(o.runDir, name),
    user: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: id.chain, key: id.key } },
    peer: { port: 1, publicUrl: 'https://127.0.0.1:1', tls: { cert: id.chain, key: id.key, ca: o.pki.ca.cert }, allowedPeers: [o.pki.demoClient.subjectDn, ...Object.values(o.pki.boxes).map((b) => b.subjectDn)] },
    hl7: { port: 1 },
    admin: { token: randomBytes(24).toString('base64url') },
    log: { level: o.logLevel },
    pacs: { kind: 'folder', path: o.pacsDir },
  };
  const config: DrimboxConfig = validateConfig(raw as never);
  // free ports, chosen at listen time
  config.user.port = 0;
  config.peer.port = 0;
  config.hl7.port = 0;
  const box = await startBox(config, { logger: createLogger(o.logLevel, name) });
  config.user.publicUrl = box.userUrl;
  config.peer.publicUrl = box.peerUrl;
  return box;
}

async function seedFolderPacs(box: Box) {
  const studies = await demoStudies();
  const existing = new Set((await box.pacs.findStudies({})).map((s) => s['0020000D']?.Value?.[0]));
  for (const s of studies) {
    if (existing.has(s.studyInstanceUid)) continue;
    const r = await box.pacs.store((async function* () { yield* s.files; })());
    if (r.failed.length) throw new Error(`demo study ${s.key}: ${r.failed.length} instance(s) not stored: ${r.failed[0].reason}`);
  }
  return studies.map((s) => ({ studyInstanceUid: s.studyInstanceUid, patientIns: s.patient.ins, modality: s.modality, description: s.description }));
}

function describe(box: Box, pki: DevPki): BoxManifest {
  const id = pki.boxes[box.config.box.name];
  return {
    name: box.config.box.name,
    roles: box.config.roles,
    userUrl: box.userUrl,
    peerUrl: box.peerUrl,
    mllp: { host: box.config.hl7.host, port: box.config.hl7.port },
    cert: id.chain,
    key: id.key,
    ca: pki.ca.cert,
    adminToken: box.config.admin.token,
  };
}

export const demoRunDirExists = (dir = join(ROOT, 'sandbox', '.run')) => existsSync(dir);
