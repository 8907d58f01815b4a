// The two-box sandbox network for consumer tests: dev PKI, the registry (both boxes enrolled and
// approved, signed allow-list), the PSC and DMP simulators, box A (source) with its own Orthanc, box B
// (consumer) with its own Orthanc as local PACS. `publish` puts a study in Orthanc A, builds its KOS
// (Retrieve URLs on box A), publishes it to the DMP and registers it with box A's KOS guard.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { startOrthanc, type Orthanc } from './orthanc.js';
import { startTestBox, testBoxConfig } from './box.js';
import { startBox } from '../../gateway/src/box.js';
import { createLogger } from '../../gateway/src/log.js';
import { testPki } from './pki.js';
import { dmpTestPki } from './dmp-pki.js';
import { syntheticPublicationRecord } from './publication-record.js';
import type { StartedRegistry } from '../../registry/src/app.js';
import { startTestRegistry, enrolApproved } from './registry.js';
import { startPscSimulator, type PscSimulator } from '../../sandbox/psc/index.js';
import { startDmpSimulator, type DmpSimulator } from '../../sandbox/dmp/simulator.js';
import type { Box } from '../../gateway/src/box.js';
import { trustLayer } from '../../gateway/src/trust/layer.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { sourceRole } from '../../gateway/src/source/role.js';
import { PublicationRepository } from '../../gateway/src/source/publication/repository.js';
import { createConsumerRole, consumerOf, type ConsumerRoleOptions, type ConsumerServices } from '../../gateway/src/consumer/role.js';
import { buildKos, type KosInstance } from '../../gateway/src/dicom/kos.js';
import { readInfo } from '../../gateway/src/dicom/part10.js';
import { SESSION_COOKIE } from '../../gateway/src/trust/sessions.js';
import type { PublicationRecord } from '../../gateway/src/cda/types.js';
import { relabel } from '../../sandbox/demo-data/relabel.js';
import { freePort } from './ports.js';
import { seededUid } from '../../sandbox/demo-data/part10.js';
import { startOrUnwind, closeAll, type Closers } from './unwind.js';

const SECRET = { 'box-a': 'box-a-secret-0123456789', 'box-b': 'box-b-secret-0123456789', 'box-c': 'box-c-secret-0123456789' };

export interface NetworkOptions {
  cacheMaxBytes?: number;
  consumer?: ConsumerRoleOptions;
  /** box B's local PACS: its own Orthanc (default) or none */
  consumerOrthanc?: boolean;
  /** box A reaches Orthanc A through a loopback TCP relay that tests can cut (`net.sourcePacsCut`) */
  sourcePacsRelay?: boolean;
  /** Orthanc A's in-memory storage cache in MB: 0 lets a test damage a stored file (`orthanc.ts`) */
  sourceStorageCacheMb?: number;
  /** a second source box, box C (its own data, Orthanc A as its PACS): `publish(files, { source: 'box-c' })` */
  secondSource?: boolean;
  /** more configuration sections for box B (e.g. screening) */
  consumerConfig?: Record<string, unknown>;
  /** box B's user listener on a port picked beforehand, named by its publicUrl: browser pages post with the box's own Origin */
  consumerOwnOrigin?: boolean;
}

/** A TCP relay in front of a PACS: `cutAfter(n)` kills the next connection that relays more than n bytes back. */
export interface PacsRelay {
  url: string;
  cutAfter(bytes: number): void;
  /** a slow source PACS: each connection relays at most this many bytes per second back (undefined: no limit) */
  throttle(bytesPerSecond: number | undefined): void;
  /** how many connections were cut */
  cuts: number;
  close(): Promise<void>;
}

async function startPacsRelay(target: string): Promise<PacsRelay> {
  const t = new URL(target);
  const port = await freePort();
  let armed: number | undefined;
  let rate: number | undefined;
  const sockets = new Set<Socket>();
  const relay: PacsRelay = {
    url: `http://127.0.0.1:${port}${t.pathname}`,
    cuts: 0,
    cutAfter(bytes) { armed = bytes; },
    throttle(bps) { rate = bps; },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
  const srv = createServer((client) => {
    const up = connect(Number(t.port), t.hostname);
    sockets.add(client).add(up);
    let relayed = 0;
    up.on('data', (c: Buffer) => {
      relayed += c.length;
      if (armed !== undefined && relayed > armed) {
        // the PACS "dies" mid-answer: what was relayed is delivered, then the connection closes (FIN,
        // as the kernel does for a killed process; a reset could drop bytes box A had not read yet)
        armed = undefined;
        relay.cuts++;
        client.destroy();
        up.destroy();
        return;
      }
      if (rate) {
        // throttled: the next chunk is read once this one's share of the rate has passed
        up.pause();
        client.write(c);
        setTimeout(() => up.resume(), (c.length / rate) * 1000);
        return;
      }
      if (!client.write(c)) { up.pause(); client.once('drain', () => up.resume()); }
    });
    client.pipe(up);
    const done = () => { sockets.delete(client); sockets.delete(up); client.destroy(); up.destroy(); };
    up.on('end', () => client.end()).on('error', done).on('close', done);
    client.on('error', done).on('close', done);
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return relay;
}

export interface Published {
  studyUid: string;
  kosUid: string;
  series: { seriesUid: string; instances: string[] }[];
  record: PublicationRecord;
}

export interface ConsumerNetwork {
  registry: StartedRegistry;
  psc: PscSimulator;
  dmp: DmpSimulator;
  orthancA: Orthanc;
  orthancB?: Orthanc;
  /** with `sourcePacsRelay`: the cuttable relay between box A and Orthanc A */
  sourcePacsRelay?: PacsRelay;
  boxA: Box;
  boxB: Box;
  /** with `secondSource`: box C, a second source box (stopped and started again on the same ports) */
  boxC?: Box;
  stopSecondSource(): Promise<void>;
  startSecondSource(): Promise<void>;
  consumer: ConsumerServices;
  /** a logged-in clinician on box B (a real PSC token): the Cookie header value */
  login(rpps?: string): Promise<{ cookie: string; rpps: string; token: string }>;
  /** uploads Part 10 files to Orthanc A and publishes them as one study */
  publish(files: Buffer[], o?: { ins?: string; accession?: string; retrieveHost?: string; retrieveBase?: string; cda?: Buffer; source?: 'box-a' | 'box-c'; studyDate?: string }): Promise<Published>;
  /** restarts box B on the same data directory (the cache must survive) */
  restartConsumer(): Promise<void>;
  close(): Promise<void>;
}

export const TEST_INS = '279035121518989';

export function startConsumerNetwork(o: NetworkOptions = {}): Promise<ConsumerNetwork> {
  return startOrUnwind((closers) => start(o, closers));
}

async function start(o: NetworkOptions, closers: Closers): Promise<ConsumerNetwork> {
  const pki = await testPki();
  const read = (f: string) => readFileSync(f, 'utf8');
  const registry = await startTestRegistry();
  closers.push(() => registry.close());
  // box B is never called as a source; box A (the source every KOS points at) enrols once its peer
  // port is known: the list names host AND port
  await enrolApproved(registry, pki.boxes['box-b'], 'box-b.localhost', 'Centre box-b');

  const psc = await startPscSimulator({ clients: [
    { client_id: 'box-a', client_secret: SECRET['box-a'], redirect_uris: ['https://127.0.0.1/auth/callback'] },
    { client_id: 'box-b', client_secret: SECRET['box-b'], redirect_uris: ['https://127.0.0.1/auth/callback'] },
    { client_id: 'box-c', client_secret: SECRET['box-c'], redirect_uris: ['https://127.0.0.1/auth/callback'] },
  ] });
  closers.push(() => psc.close());

  const dmpPki = await dmpTestPki();
  const dmp = await startDmpSimulator({
    dataDir: mkdtempSync(join(tmpdir(), 'dmp-sim-')),
    tls: { cert: dmpPki.server.cert, key: dmpPki.server.key, ca: [read(pki.ca.cert)] },
    vihfTrustAnchors: [read(pki.ca.cert)],
  });
  closers.push(() => dmp.close());
  const dmpCa = join(mkdtempSync(join(tmpdir(), 'dmp-ca-')), 'dmp-ca.pem');
  writeFileSync(dmpCa, dmpPki.caPem);
  const dmpConfig = { registryUrl: dmp.registryUrl, repositoryUrl: dmp.repositoryUrl, ca: dmpCa, finess: '101235555', sourceId: '1.2.250.1.999.1.1.8121', timeoutMs: 10_000 };

  const orthancA = await startOrthanc({ gdcm: false, ...(o.sourceStorageCacheMb !== undefined ? { storageCacheMb: o.sourceStorageCacheMb } : {}) });
  closers.push(() => orthancA.stop());
  const orthancB = o.consumerOrthanc === false ? undefined : await startOrthanc({ gdcm: false, aet: 'ORTHANC_B' });
  if (orthancB) closers.push(() => orthancB.stop());

  const sourcePacsRelay = o.sourcePacsRelay ? await startPacsRelay(orthancA.dicomWebUrl) : undefined;
  if (sourcePacsRelay) closers.push(() => sourcePacsRelay.close());

  const extra = (name: 'box-a' | 'box-b' | 'box-c') => ({
    allowList: { url: registry.allowListUrl, trustAnchors: [pki.ca.cert] },
    psc: { issuer: psc.issuer, clientId: name, clientSecret: SECRET[name], introspectionCacheMs: 0 },
    dmp: dmpConfig,
  });
  const boxA = await startTestBox({
    name: 'box-a', pacs: { kind: 'dicomweb', url: sourcePacsRelay?.url ?? orthancA.dicomWebUrl }, allowedPeers: [],
    extra: { ...extra('box-a'), roles: ['source'] },
    boxOptions: { plugins: [trustLayer, dmpService, sourceRole] },
  });
  let closedA: Promise<void> | undefined;
  const closeA = boxA.close.bind(boxA);
  boxA.close = () => (closedA ??= closeA()); // tests stop the source box; close it once
  closers.push(() => boxA.close());
  await enrolApproved(registry, pki.boxes['box-a'], new URL(boxA.peerUrl).host, 'Centre box-a');

  // box C: a second source box, started again on the same ports and data (a box that went down and came back)
  let boxC: Box | undefined;
  let boxCConfig: Awaited<ReturnType<typeof testBoxConfig>> | undefined;
  const startC = async () => {
    boxCConfig ??= await testBoxConfig({
      name: 'box-c', pacs: { kind: 'dicomweb', url: orthancA.dicomWebUrl }, allowedPeers: [],
      extra: { ...extra('box-c'), roles: ['source'], box: { name: 'box-c', organization: pki.boxes['box-c'].organization, retrieveLocationUid: '1.2.250.1.999.1.3' } },
    });
    boxC = await startBox(boxCConfig, { logger: createLogger(boxCConfig.log.level, 'box-c'), plugins: [trustLayer, dmpService, sourceRole] });
    boxCConfig.peer.port = Number(new URL(boxC.peerUrl).port);
    boxCConfig.user.port = Number(new URL(boxC.userUrl).port);
  };
  let cDown = true;
  const stopC = async () => { if (!cDown) { cDown = true; await boxC!.close(); } };
  if (o.secondSource) {
    await startC();
    cDown = false;
    closers.push(() => stopC());
    await enrolApproved(registry, pki.boxes['box-c'], new URL(boxC!.peerUrl).host, 'Centre box-c');
  }

  const consumerPacs = orthancB ? { kind: 'dicomweb', url: orthancB.dicomWebUrl } : { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'box-b-pacs-')) };
  let boxB!: Box;
  let dataDir: string | undefined;
  let userPortB: number | undefined;
  const startB = async () => {
    if (o.consumerOwnOrigin) userPortB ??= await freePort();
    boxB = await startTestBox({
      name: 'box-b', pacs: consumerPacs, allowedPeers: [], userPort: userPortB,
      extra: { ...extra('box-b'), roles: ['consumer'], ...(dataDir ? { dataDir } : {}), ...(o.cacheMaxBytes ? { cache: { maxBytes: Math.max(o.cacheMaxBytes, 1024 ** 2) } } : {}), ...o.consumerConfig },
      boxOptions: { plugins: [trustLayer, dmpService, createConsumerRole({ peer: { timeoutMs: 5_000, connectTimeoutMs: 2_000, retries: 1 }, ...o.consumer })] },
    });
    dataDir = boxB.config.dataDir;
    if (o.cacheMaxBytes && o.cacheMaxBytes < 1024 ** 2) {
      // below the configurable minimum: only tests go there
      (consumerOf(boxB.services)!.cache as unknown as { opts: { maxBytes: number } }).opts.maxBytes = o.cacheMaxBytes;
    }
  };
  await startB();
  closers.push(() => boxB.close());

  let seq = 0;
  const net: ConsumerNetwork = {
    registry, psc, dmp, orthancA, orthancB, sourcePacsRelay, boxA,
    get boxC() { return boxC; },
    stopSecondSource: stopC,
    async startSecondSource() { if (cDown) { await startC(); cDown = false; } },
    get boxB() { return boxB; },
    get consumer() { return consumerOf(boxB.services)!; },
    async login(rpps = psc.clinicians[0].rpps) {
      const token = await psc.issueAccessToken({ rpps, clientId: 'box-b' });
      const c = psc.clinicians.find((x) => x.rpps === rpps)!;
      const s = await boxB.services.sessions!.create({ rpps, nationalId: `8${rpps}`, sub: `f:x:8${rpps}`, name: `${c.givenName} ${c.familyName}`, givenName: c.givenName, familyName: c.familyName }, { accessToken: token });
      return { cookie: `${SESSION_COOKIE}=${s.id}`, rpps, token };
    },
    async publish(files, p = {}) {
      seq++;
      await orthancA.upload(files);
      const infos = files.map((f) => readInfo(f));
      const studyUid = infos[0].studyInstanceUid;
      const record = syntheticPublicationRecord({ studyInstanceUid: studyUid, accession: p.accession ?? `ACC-${seq}`, documentRoot: `1.2.250.1.999.1.1.8121.7.${Date.now()}.${seq}` });
      if (p.ins) record.patient.ins.value = p.ins;
      record.cda = p.cda ?? readFileSync('test/fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml');
      record.studies[0].modalities = [...new Set(infos.map((i) => i.modality).filter(Boolean))].map((m) => ({ code: m!, codeSystem: '1.2.840.10008.2.16.4', displayName: m! }));
      const instances: KosInstance[] = infos.map((i) => ({ studyUid: i.studyInstanceUid, seriesUid: i.seriesInstanceUid, sopClassUid: i.sopClassUid!, sopInstanceUid: i.sopInstanceUid }));
      const src = p.source === 'box-c' ? boxC! : boxA;
      if (p.studyDate) record.studies[0].startTime = `${p.studyDate}092200+0100`;
      const base = p.retrieveHost ? src.peerUrl.replace('127.0.0.1', p.retrieveHost) : src.peerUrl;
      // like the publication worker: the PACS's own patient id goes into the KOS's OtherPatientIDs
      const kos = buildKos({ record, study: record.studies[0], instances, retrieveBaseUrl: p.retrieveBase ?? `${base}/dicom-web`, retrieveLocationUid: src.config.box.retrieveLocationUid, patientFromPacs: { patientId: infos[0].patientId } });
      await boxA.services.dmp!.provideAndRegister({ record, kos: { sopInstanceUid: kos.sopInstanceUid, part10: kos.part10 }, includeReport: true });
      // box A's KOS guard must know what it published (a done job: the outbox worker leaves it alone)
      const refs: Record<string, Record<string, string[]>> = {};
      for (const i of instances) ((refs[i.studyUid] ??= {})[i.seriesUid] ??= []).push(i.sopInstanceUid);
      const repoA = new PublicationRepository(src.store);
      const { job } = await repoA.enqueue({ kind: 'publish', idemKey: `test|${kos.sopInstanceUid}`, setId: `test-${seq}`, payload: {}, state: 'done' });
      const kosId = await repoA.saveBuiltKos(job.id, { setId: `test-${seq}`, sopInstanceUid: kos.sopInstanceUid, patientId: record.patient.ins.value, part10: kos.part10, refs, studies: [{ studyUid, accession: record.studies[0].accessionNumber?.value ?? '' }] });
      await repoA.markPublished(job.id, kosId, { kos: `urn:uuid:test-${seq}` });
      const series = Object.entries(refs[studyUid]).map(([seriesUid, list]) => ({ seriesUid, instances: list }));
      return { studyUid, kosUid: kos.sopInstanceUid, series, record };
    },
    async restartConsumer() {
      await boxB.close();
      await startB();
    },
    close: () => closeAll(closers),
  };
  return net;
}

/** The contextual call form for the test patient (DRIM-M.md §5 names). */
export function callForm(over: Record<string, string | undefined> = {}): Record<string, string> {
  const f: Record<string, string | undefined> = {
    'Patient.identifier.value': TEST_INS,
    'Patient.identifier.system': '1.2.250.1.213.1.4.10',
    'Patient.name.family': 'DUPONT',
    'Patient.name.given': 'MARIE ANNE',
    'Patient.gender': 'female',
    'Patient.birthDate': '1979-03-12',
    'Address.district': '75115',
    InformationEtOppositionConsultation: 'true',
    PatientID: 'IPP-0042',
    PatientIDIssuer: '1.2.250.1.999.1.1.8121.1',
    ...over,
  };
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

/**
 * POSTs a contextual call (the form the launcher or the DPI submits) to box B's user listener, from
 * `origin` (default: box B's own public origin, as its launcher page; null: no Origin header). The
 * answer is returned unread: the caller consumes or dumps its body.
 */
export function contextualCall(net: ConsumerNetwork, dispatcher: Dispatcher, form: Record<string, string>, o: { cookie?: string; accept?: string; origin?: string | null } = {}): ReturnType<typeof request> {
  const origin = o.origin === undefined ? new URL(net.boxB.config.user.publicUrl).origin : o.origin;
  return request(`${net.boxB.userUrl}/contextual-call`, {
    method: 'POST', dispatcher,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: o.accept ?? 'application/json', ...(o.cookie ? { cookie: o.cookie } : {}), ...(origin ? { origin } : {}) },
    body: new URLSearchParams(form).toString(),
  });
}

/** Opens a viewer session with a contextual call as the logged-in clinician `cookie`: its id (throws unless 303 to the viewer). */
export async function openSession(net: ConsumerNetwork, dispatcher: Dispatcher, cookie: string, form: Record<string, string> = callForm()): Promise<string> {
  const r = await contextualCall(net, dispatcher, form, { cookie });
  const text = await r.body.text();
  if (r.statusCode !== 303) throw new Error(`contextual call: ${r.statusCode} ${text}`);
  const location = String(r.headers.location);
  const id = new URL(location, 'https://x').searchParams.get('session');
  if (!id) throw new Error(`contextual call: redirected to ${location}, not to a viewer session`);
  return id;
}

/** Copies of Part 10 files as a new study (new study/series/instance UIDs) of the test patient. */
export async function relabelStudy(files: Buffer[], seed: string): Promise<Buffer[]> {
  const studyInstanceUid = seededUid(`${seed}|study`);
  const out: Buffer[] = [];
  for (const f of files) {
    out.push((await relabel(f, {
      patientId: 'IPP-0042', patientName: 'DUPONT^MARIE ANNE', birthDate: '19790312', sex: 'F', studyInstanceUid,
      accessionNumber: seed.slice(0, 16), studyDate: '20240105', studyDescription: 'TEST', institution: 'CENTRE A', seed,
    })).part10);
  }
  return out;
}
