// A publication test bench: the DMP simulator (mutual TLS, trusting the dev PKI that signs the box's
// VIHF) and the box config section that points at it; MLLP sending with node-hl7-client.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Message, type InboundResponse } from 'node-hl7-client';
import { startDmpSimulator, type DmpSimulator } from '../../sandbox/dmp/simulator.js';
import { dmpTestPki } from './dmp-pki.js';
import { testPki } from './pki.js';
import { readAck } from '../../gateway/src/hl7/ack.js';
import { parseHl7 } from '../../gateway/src/hl7/message.js';
import type { Box } from '../../gateway/src/box.js';
import type { JobKind } from '../../gateway/src/source/publication/repository.js';
import { waitFor } from './wait.js';

export { waitFor };

export interface DmpBench {
  sim: DmpSimulator;
  /** the `dmp` config section for a box publishing to this simulator */
  dmpConfig: Record<string, unknown>;
  dataDir: string;
}

/** `port`: to bring a stopped simulator back at the same address (same dataDir: same DMP content). */
export async function startDmpBench(dataDir = mkdtempSync(join(tmpdir(), 'dmp-sim-')), opts: { port?: number } = {}): Promise<DmpBench> {
  const pki = await testPki();
  const dmpPki = await dmpTestPki();
  const boxCa = readFileSync(pki.ca.cert, 'utf8');
  const sim = await startDmpSimulator({
    dataDir,
    port: opts.port,
    tls: { cert: dmpPki.server.cert, key: dmpPki.server.key, ca: [boxCa] },
    vihfTrustAnchors: [boxCa],
  });
  const caFile = join(mkdtempSync(join(tmpdir(), 'dmp-ca-')), 'dmp-ca.pem');
  writeFileSync(caFile, dmpPki.caPem);
  return {
    sim,
    dataDir,
    dmpConfig: {
      registryUrl: sim.registryUrl,
      repositoryUrl: sim.repositoryUrl,
      ca: caFile,
      finess: '101235555',
      sourceId: '1.2.250.1.999.1.1.8121',
      timeoutMs: 10_000,
    },
  };
}

/** Sends one message with node-hl7-client and returns the ACK text and its MSA code. */
export async function sendHl7(port: number, text: string): Promise<{ raw: string; code: string; text?: string; error?: string; receivedAt: number }> {
  const client = new Client({ host: '127.0.0.1' });
  let done!: (s: string) => void;
  let receivedAt = 0;
  const got = new Promise<string>((r) => { done = r; });
  const conn = client.createConnection({ port, waitAck: true } as never, async (res: InboundResponse) => {
    receivedAt = performance.now();
    done(res.getMessage().toString());
  });
  try {
    await conn.sendMessage(new Message({ text }));
    const raw = await Promise.race([got, new Promise<string>((_, rej) => setTimeout(() => rej(new Error('no ACK within 15 s')), 15_000))]);
    const ack = readAck(parseHl7(raw));
    const err = raw.split(/\r|\n/).find((l) => l.startsWith('ERR'));
    return { raw, code: ack.code, text: ack.text, error: err, receivedAt };
  } finally {
    await conn.close();
  }
}

/** A `publication_job` row as the box's database holds it (snake_case columns). */
export type JobRow = Record<string, any>;
/** A job by its HL7 message control id, or the newest job of a kind on a report set. */
export type JobKey = string | { kind: JobKind; setId: string };

/** The newest publication job for that key, read from the box's database. */
export function publicationJob(box: Box, key: JobKey): Promise<JobRow | undefined> {
  const q = box.store.db.selectFrom('publication_job').selectAll().orderBy('id', 'desc');
  return (typeof key === 'string' ? q.where('control_id', '=', key) : q.where('kind', '=', key.kind).where('set_id', '=', key.setId)).executeTakeFirst();
}

/** Waits until that job is settled (done or failed) and returns its row; a timeout says where it was left. */
export function settledJob(box: Box, key: JobKey, timeoutMs = 30_000): Promise<JobRow> {
  const name = typeof key === 'string' ? `job ${key}` : `the ${key.kind} job of set ${key.setId}`;
  let j: JobRow | undefined;
  return waitFor(async () => {
    j = await publicationJob(box, key);
    return j && (j.state === 'done' || j.state === 'failed') ? j : undefined;
  }, timeoutMs, () => {
    return `${name} to settle (${j ? `left in state ${j.state}${j.last_error ? `: ${j.last_error}` : ''}` : 'no such job'})`;
  });
}
