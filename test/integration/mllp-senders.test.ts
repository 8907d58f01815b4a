// The MLLP listener of a real box is deny by default (node-hl7-client and raw sockets as the RIS, the
// DMP simulator): a withdrawal from an address not in hl7.allowedSenders is never read (the
// connection is closed at once and logged without patient data), connections are capped, a silent one
// is closed, and a flood of unframed bytes costs one NACK and the connection, not the box's memory;
// with hl7.tls the RIS connects over TLS with its client certificate.
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Client, Message, type InboundResponse } from 'node-hl7-client';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startTestBox, sqliteOf } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { readAck } from '../../gateway/src/hl7/ack.js';
import { parseHl7 } from '../../gateway/src/hl7/message.js';
import { startDmpBench, sendHl7, settledJob, waitFor, type DmpBench } from '../helpers/publication-env.js';
import { makeMgStudy } from '../../sandbox/demo-data/mg-study.js';
import { buildReportCda, oruMessage, type ReportInput } from '../../sandbox/demo-data/reports.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createSourceRole } from '../../gateway/src/source/role.js';
import type { Box } from '../../gateway/src/box.js';

const PATIENT = { ins: '279035121518989', ipp: 'IPP-MLLP-1', birthName: 'PAT-MLLP', givenNames: ['CAMILLE'], birthDate: '19790328', sex: 'F' as const };
const MAX_CONNECTIONS = 4;
let bench: DmpBench;
let box: Box;
let port: number;
const logLines: Record<string, any>[] = [];
const study = makeMgStudy({ patientId: PATIENT.ipp, accession: 'ACC-MLLP-1', seed: 31 });
const report: ReportInput = {
  patient: PATIENT,
  studies: [{ studyInstanceUid: study.studyInstanceUid, accessionNumber: 'ACC-MLLP-1', modality: 'MG', date: '20240115', description: 'MAMMOGRAPHIE' }],
  setId: '1.2.250.1.999.1.1.88.1',
};
const framed = (s: string) => Buffer.concat([Buffer.from([0x0b]), Buffer.from(s, 'utf8'), Buffer.from([0x1c, 0x0d])]);
const currentKos = () => sqliteOf(box).prepare(`SELECT * FROM published_kos WHERE set_id = ? AND status = 'current'`).get(report.setId) as Record<string, any> | undefined;
const withdrawJobs = () => sqliteOf(box).prepare(`SELECT COUNT(*) FROM publication_job WHERE kind = 'withdraw'`).pluck().get() as number;

/** A raw connection from `localAddress`: what it received and when the box closed it. */
function rawClient(localAddress = '127.0.0.1') {
  const sock: Socket = connect({ host: '127.0.0.1', port, localAddress });
  let received = Buffer.alloc(0);
  let error: string | undefined;
  const openedAt = performance.now();
  sock.on('data', (d) => { received = Buffer.concat([received, d]); });
  sock.on('error', (e) => { error = (e as NodeJS.ErrnoException).code; });
  const closed = new Promise<number>((res) => sock.on('close', () => res(performance.now() - openedAt)));
  const connected = new Promise<void>((res) => sock.once('connect', () => res()));
  return { sock, closed, connected, received: () => received.toString('utf8'), error: () => error };
}

t.before(async () => {
  bench = await startDmpBench();
  box = await startTestBox({
    pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'mllp-pacs-')) },
    extra: {
      roles: ['source'],
      dmp: bench.dmpConfig,
      publication: { studyWaitMinutes: 1, retryMaxMinutes: 5, stableSeconds: 0 },
      hl7: { port: 1, allowedSenders: ['127.0.0.1'], maxConnections: MAX_CONNECTIONS, idleTimeoutSeconds: 2 },
    },
    boxOptions: {
      plugins: [dmpService, createSourceRole({ retryBaseMs: 100, maxRetryDelayMs: 500, pollMs: 200 })],
      logger: pino({ level: 'info' }, { write: (line: string) => { logLines.push(JSON.parse(line)); } }),
    },
  });
  port = box.addresses.mllp.port;
  await box.pacs.store((async function* () { for (const f of study.files) yield f.part10; })());
  const ack = await sendHl7(port, oruMessage(buildReportCda(report), report, { controlId: 'MLLP-PUB-1' }));
  if (ack.code !== 'AA') throw new Error(`the report was not accepted: ${ack.raw}`);
  const j = await settledJob(box, 'MLLP-PUB-1');
  if (j.state !== 'done') throw new Error(`not published: ${j.last_error}`);
});
t.teardown(async () => {
  await box?.close();
  await bench?.sim.close();
});

t.test('a withdrawal (ORC-1 CA) from an address not in hl7.allowedSenders is not read: the KOS stays published', async (t) => {
  const kos = currentKos();
  t.ok(kos, 'the report is published');
  const before = withdrawJobs();
  const c = rawClient('127.0.0.2');
  c.sock.on('connect', () => c.sock.write(framed(oruMessage(buildReportCda(report), report, { controlId: 'MLLP-WD-INTRUDER', withdraw: true }))));
  const ms = await c.closed;
  t.equal(c.received(), '', 'no answer at all');
  t.ok(ms < 5000, `closed at once (${Math.round(ms)} ms)`);
  t.equal(withdrawJobs(), before, 'no withdrawal queued');
  t.equal(currentKos()?.id, kos!.id, 'the KOS is still current');
  const refused = logLines.find((l) => l.event === 'mllp-connection-closed' && l.remote === '127.0.0.2');
  t.match(refused, { reason: 'sender-not-allowed' }, 'the refusal is logged with the address');
  t.notMatch(JSON.stringify(logLines), new RegExp(`${PATIENT.ins}|${PATIENT.birthName}`), 'and no patient data in the logs');

  // the same message from the allowed RIS address is honoured: the refusal was about the sender
  const ack = await sendHl7(port, oruMessage(buildReportCda(report), report, { controlId: 'MLLP-WD-RIS', withdraw: true }));
  t.equal(ack.code, 'AA');
  const w = await settledJob(box, 'MLLP-WD-RIS');
  t.equal(w.state, 'done', `withdrawn (${w.last_error ?? ''})`);
  t.equal(currentKos(), undefined, 'withdrawn only on the allowed sender\'s request');
});

t.test(`beyond hl7.maxConnections (${MAX_CONNECTIONS}) busy connections a new one is closed at once; an idle one makes way; a silent one is closed`, async (t) => {
  // node-hl7-client leaves a second, idle connection behind each send: let the idle timeout close them
  await waitFor(async () => /^drimbox_mllp_connections 0$/m.test(await box.metrics.render()), 10_000, () => 'the earlier MLLP connections to close');
  const held = Array.from({ length: MAX_CONNECTIONS }, () => rawClient());
  await Promise.all(held.map((c) => c.connected));
  // each is in the middle of a message (start byte and an MSH, no end yet): busy
  for (const c of held) c.sock.write(Buffer.from('\x0bMSH|^~\\&|RIS|CENTRE_A|DRIMBOX|CENTRE_A|20240115||ORU^R01^ORU_R01|PART|P|2.5\r'));
  await waitFor(async () => new RegExp(`^drimbox_mllp_connections ${MAX_CONNECTIONS}$`, 'm').test(await box.metrics.render()), 5000, 'the box to hold them all');
  const extra = rawClient();
  const ms = await extra.closed;
  t.ok(ms < 1500, `the connection over the cap is closed at once (${Math.round(ms)} ms)`);
  t.ok(logLines.some((l) => l.event === 'mllp-connection-closed' && l.reason === 'too-many-connections'), 'and logged');
  const silent = await Promise.all(held.map((c) => c.closed));
  t.ok(silent.every((d) => d >= 1500 && d < 10_000), `connections silent for the 2 s idle timeout are closed (${silent.map(Math.round).join(', ')} ms)`);

  // connections left open with nothing in progress make way for a new one
  const lingering = Array.from({ length: MAX_CONNECTIONS }, () => rawClient());
  await Promise.all(lingering.map((c) => c.connected));
  await waitFor(async () => new RegExp(`^drimbox_mllp_connections ${MAX_CONNECTIONS}$`, 'm').test(await box.metrics.render()), 5000, 'the box to hold them all');
  const r2 = { ...report, setId: '1.2.250.1.999.1.1.88.2' };
  t.equal((await sendHl7(port, oruMessage(buildReportCda(r2), r2, { controlId: 'MLLP-AFTER-CAP' }))).code, 'AA', 'a RIS connecting while idle connections fill the cap is served');
  t.ok(lingering.some((c) => c.sock.destroyed), 'the longest idle connection was closed for it');
  for (const c of lingering) c.sock.destroy();
});

t.test('20 connections × 15 MB of unframed bytes: one NACK each for those admitted, every connection closed, the box unaffected', async (t) => {
  const junk = Buffer.alloc(15 * 1024 * 1024, 'A');
  const external0 = process.memoryUsage().arrayBuffers;
  const clients = Array.from({ length: 20 }, () => rawClient());
  for (const c of clients) c.sock.on('connect', () => c.sock.write(junk));
  const times = await Promise.race([
    Promise.all(clients.map((c) => c.closed)),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error('the box kept reading unframed bytes: connections still open after 20 s')), 20_000)),
  ]);
  t.equal(times.length, 20, 'every connection closed by the box');
  const answers = clients.map((c) => c.received()).filter(Boolean);
  t.comment(`${answers.length} of 20 got a NACK before being closed (the others were refused at the cap)`);
  for (const a of answers) t.match(a, /MSA\|AR\|.*ERR\|.*outside an MLLP frame, so the connection is closed/s, 'a NACK saying why');
  const grown = (process.memoryUsage().arrayBuffers - external0) / 1024 ** 2;
  t.comment(`buffers grew by ${grown.toFixed(1)} MiB during the flood (the 15 MB sent is one shared buffer)`);
  t.ok(grown < 100, 'the box did not keep the bytes');
  const r3 = { ...report, setId: '1.2.250.1.999.1.1.88.3' };
  t.equal((await sendHl7(port, oruMessage(buildReportCda(r3), r3, { controlId: 'MLLP-AFTER-FLOOD' }))).code, 'AA', 'the RIS is still served');
});

t.test('hl7.tls: MLLP over TLS, the RIS authenticating with its client certificate', async (t) => {
  const pki = await testPki();
  const id = pki.boxes['box-a'];
  const tlsBox = await startTestBox({
    pacs: { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'mllp-tls-pacs-')) },
    extra: { roles: ['source'], hl7: { port: 1, allowedSenders: ['127.0.0.1'], tls: { cert: id.chain, key: id.key, ca: pki.ca.cert } } },
    boxOptions: { plugins: [createSourceRole({ pollMs: 200 })] },
  });
  t.teardown(() => tlsBox.close());
  const tlsPort = tlsBox.addresses.mllp.port;
  const r4 = { ...report, setId: '1.2.250.1.999.1.1.88.4' };
  const msg = oruMessage(buildReportCda(r4), r4, { controlId: 'MLLP-TLS-1' });

  // node-hl7-client over TLS with the RIS's certificate
  const client = new Client({ host: '127.0.0.1', tls: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.demoClient.cert), key: readFileSync(pki.demoClient.key), servername: 'localhost' } } as never);
  let got!: (s: string) => void;
  const answer = new Promise<string>((r) => { got = r; });
  const conn = client.createConnection({ port: tlsPort, waitAck: true } as never, async (res: InboundResponse) => { got(res.getMessage().toString()); });
  t.teardown(() => conn.close());
  await conn.sendMessage(new Message({ text: msg }));
  const ack = readAck(parseHl7(await answer));
  t.equal(ack.code, 'AA', 'a report over TLS is acknowledged');
  t.equal(ack.controlId, 'MLLP-TLS-1');

  // without a client certificate: the handshake fails, nothing is read
  const anon = tlsConnect({ host: '127.0.0.1', port: tlsPort, ca: readFileSync(pki.ca.cert), servername: 'localhost' });
  anon.on('error', () => {});
  anon.on('secureConnect', () => anon.write(framed(msg.replace('MLLP-TLS-1', 'MLLP-TLS-ANON'))));
  let anonData = '';
  anon.on('data', (d) => { anonData += d; });
  await new Promise((r) => anon.on('close', r));
  t.equal(anonData, '', 'a client without a certificate gets nothing');
  // plain MLLP to the TLS port is not understood as HL7
  const plain = connect({ host: '127.0.0.1', port: tlsPort });
  plain.on('error', () => {});
  plain.on('connect', () => plain.write(framed(msg.replace('MLLP-TLS-1', 'MLLP-TLS-PLAIN'))));
  let plainData = '';
  plain.on('data', (d) => { plainData += d; });
  await new Promise((r) => plain.on('close', r));
  t.notMatch(plainData, /MSA/, 'plain MLLP gets no HL7 answer');
  t.equal(sqliteOf(tlsBox).prepare(`SELECT COUNT(*) FROM publication_job WHERE control_id IN ('MLLP-TLS-ANON','MLLP-TLS-PLAIN')`).pluck().get(), 0, 'and no job');
});
