// The demo DRIM-M network on one machine, every server on 127.0.0.1 and a free port: dev PKI, the
// enrolment registry (signed allow-list; demo boxes are approved at once), the PSC and DMP
// simulators, box-a (source: a folder-store PACS seeded with the demo studies, reports published
// through MLLP at start; also a consumer, so the report links to its viewer open images) and box-b
// (consumer: launcher page, viewer, cache). The boxes trust each
// other only through the signed list. Writes sandbox/.run/manifest.json.
import { mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { ensureDevPki, type DevPki } from '../certs/pki.js';
import { validateConfig } from '../gateway/src/config/load.js';
import type { DrimboxConfig } from '../gateway/src/config/schema.js';
import { startBox, type Box } from '../gateway/src/box.js';
import { pluginsFor, type RoleOptions } from '../gateway/src/roles.js';
import { createLogger } from '../gateway/src/log.js';
import type { LauncherEntry } from '../gateway/src/consumer/launcher.js';
import { startRegistry, type StartedRegistry } from '../registry/src/app.js';
import { startPscSimulator, type PscSimulator } from './psc/index.js';
import { startDmpSimulator, type DmpSimulator } from './dmp/simulator.js';
import { demoStudies, TEST_INS_OID, type DemoStudy } from './demo-data/catalogue.js';
import { demoReportMessages } from './demo-data/reports.js';
import { sendMllp } from './mllp-send.js';
import { screeningDemo } from './demo-data/screening.js';
import { SESSION_COOKIE } from '../gateway/src/trust/sessions.js';
import { freePort } from './ports.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
const FINESS = '750000001';
/** the calling AE title box-a accepts IOCM rejection notes from (send them with storescu -aet DEMO_PACS) */
export const DEMO_PACS_AET = 'DEMO_PACS';

export interface DemoNetworkOptions {
  /** where state lives (default sandbox/.run; wiped at each start: ports change between runs) */
  runDir?: string;
  /** where the dev PKI lives (default certs/out) */
  pkiDir?: string;
  logLevel?: string;
  /** a screening demo: a second source box (box-c), 20 screening mammograms with priors across box-a and box-c, a batch on box-b */
  screening?: boolean;
}

export interface BoxManifest {
  name: string;
  roles: string[];
  userUrl: string;
  peerUrl: string;
  /** MLLP listener (source role) */
  mllp?: { host: string; port: number };
  /** IOCM C-STORE SCP receiving rejection notes (source role, when configured) */
  iocm?: { host: string; port: number; aeTitle: string; callingAets: string[] };
  cert: string;
  key: string;
  ca: string;
  adminToken: string;
  contextualCallUrl?: string;
  launcherUrl?: string;
}

export interface DemoManifest {
  startedAt: string;
  boxes: BoxManifest[];
  demoClient: { cert: string; key: string; ca: string; subjectDn: string };
  registry: { url: string; allowListUrl: string; adminToken: string };
  psc: { issuer: string; clinicians: { rpps: string; name: string }[] };
  dmp: { url: string; registryUrl: string; repositoryUrl: string; documentsUrl: string };
  studies: { box: string; studyInstanceUid: string; patientIns: string; modality: string; description: string; kosUid?: string; state: string }[];
  /** with `screening`: the demo batch on box-b and its worklist */
  screening?: { batchId: string; worklistUrl: string; cases: number };
}

export interface DemoNetwork {
  manifest: DemoManifest;
  boxes: Record<string, Box>;
  pki: DevPki;
  psc: PscSimulator;
  dmp: DmpSimulator;
  registry: StartedRegistry;
  close(): Promise<void>;
}

export async function startDemoNetwork(o: DemoNetworkOptions = {}): Promise<DemoNetwork> {
  const runDir = o.runDir ?? join(ROOT, 'sandbox', '.run');
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const pki = await ensureDevPki(o.pkiDir ?? join(ROOT, 'certs', 'out'), { boxes: ['box-a', 'box-b', 'box-c'] });
  const logLevel = o.logLevel ?? 'warn';
  const read = (f: string) => readFileSync(f, 'utf8');
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => { for (const c of closers.reverse()) await c().catch(() => undefined); };

  try {
    const ports = { a: { user: await freePort(), peer: await freePort(), iocm: await freePort() }, b: { user: await freePort(), peer: await freePort() }, c: { user: await freePort(), peer: await freePort() } };
    const userUrl = (p: number) => `https://127.0.0.1:${p}`;

    const registryAdmin = randomBytes(24).toString('base64url');
    const registry = await startRegistry({
      tls: { certPem: read(pki.registry.chain), keyPem: read(pki.registry.key), clientCaPem: read(pki.ca.cert) },
      signer: { keyPem: read(pki.signer.key), chainPem: read(pki.signer.chain) },
      adminToken: registryAdmin,
      dbFile: join(runDir, 'registry.db'),
      autoApprove: true,
    });
    closers.push(() => registry.close());
    await enrolDemoClient(pki, registry);

    const secrets = { a: randomBytes(24).toString('base64url'), b: randomBytes(24).toString('base64url'), c: randomBytes(24).toString('base64url') };
    const psc = await startPscSimulator({
      clients: [
        { client_id: 'box-a', client_secret: secrets.a, redirect_uris: [`${userUrl(ports.a.user)}/auth/callback`] },
        { client_id: 'box-b', client_secret: secrets.b, redirect_uris: [`${userUrl(ports.b.user)}/auth/callback`] },
        ...(o.screening ? [{ client_id: 'box-c', client_secret: secrets.c, redirect_uris: [`${userUrl(ports.c.user)}/auth/callback`] }] : []),
      ],
      dataDir: join(runDir, 'psc'),
    });
    closers.push(() => psc.close());

    const dmp = await startDmpSimulator({
      dataDir: join(runDir, 'dmp'),
      tls: { cert: read(pki.dmpSimulator.cert), key: read(pki.dmpSimulator.key), ca: read(pki.ca.cert) },
      vihfTrustAnchors: [read(pki.ca.cert)],
    });
    closers.push(() => dmp.close());

    const studies = await demoStudies();
    const screening = o.screening ? screeningDemo() : undefined;
    // the screening demo publishes 36 more studies: no wait for stability (the PACS is seeded before the reports)
    const publication = screening ? { publication: { stableSeconds: 0, concurrency: 4 } } : {};
    const common = { pki, runDir, logLevel, registry, psc, dmp };
    const boxA = await startDemoBox({ ...common, name: 'box-a', roles: ['source', 'consumer'], ports: ports.a, secret: secrets.a, extra: publication });
    closers.push(() => boxA.close());
    await seedFolderPacs(boxA, studies);
    const boxC = screening ? await startDemoBox({ ...common, name: 'box-c', roles: ['source'], ports: ports.c, secret: secrets.c, extra: publication }) : undefined;
    if (boxC) closers.push(() => boxC.close());
    if (screening) {
      await seedFolderPacs(boxA, screening.byBox['box-a']);
      await seedFolderPacs(boxC!, screening.byBox['box-c']);
    }
    const launcher: LauncherEntry[] = launcherEntries(studies, boxA);
    const boxB = await startDemoBox({ ...common, name: 'box-b', roles: ['consumer'], ports: ports.b, secret: secrets.b, roleOptions: { consumer: { launcher: () => launcher } } });
    closers.push(() => boxB.close());
    // box-a fetched the list before box-b enrolled: take the new list now rather than at the daily refresh
    for (const box of [boxA, boxB, ...(boxC ? [boxC] : [])]) {
      if (!(await box.services.allowList?.refresh())) throw new Error(`${box.config.box.name}: the allow-list refresh was refused`);
    }

    // the RIS validates the reports: publish them through MLLP and wait for the DMP's acknowledgements
    const sendReports = async (box: Box, list: DemoStudy[], prefix?: string) => {
      const mllp = box.addresses.mllp;
      for (const msg of demoReportMessages(list, { controlIdPrefix: prefix })) {
        const ack = await sendMllp(mllp.host, mllp.port, msg);
        if (!/\rMSA\|AA\|/.test(ack)) throw new Error(`demo report refused by ${box.config.box.name}: ${ack.replace(/\r/g, ' | ')}`);
      }
    };
    await sendReports(boxA, studies);
    if (screening) {
      await sendReports(boxA, screening.byBox['box-a'], 'DEP');
      await sendReports(boxC!, screening.byBox['box-c'], 'DEP');
    }
    const published = await waitForPublications(boxA, studies.length + (screening?.byBox['box-a'].length ?? 0));
    if (screening) await waitForPublications(boxC!, screening.byBox['box-c'].length);
    const batch = screening ? await createDemoBatch(boxB, psc, screening.rows) : undefined;

    const manifest: DemoManifest = {
      startedAt: new Date().toISOString(),
      boxes: [{ ...describe(boxA, pki), contextualCallUrl: `${boxA.userUrl}/contextual-call` }, { ...describe(boxB, pki), contextualCallUrl: `${boxB.userUrl}/contextual-call`, launcherUrl: `${boxB.userUrl}/` }, ...(boxC ? [describe(boxC, pki)] : [])],
      demoClient: { cert: pki.demoClient.cert, key: pki.demoClient.key, ca: pki.ca.cert, subjectDn: pki.demoClient.subjectDn },
      registry: { url: registry.url, allowListUrl: registry.allowListUrl, adminToken: registryAdmin },
      psc: { issuer: psc.issuer, clinicians: psc.clinicians.map((c) => ({ rpps: c.rpps, name: `${c.givenName ?? ''} ${c.familyName ?? ''}`.trim() })) },
      dmp: { url: dmp.url, registryUrl: dmp.registryUrl, repositoryUrl: dmp.repositoryUrl, documentsUrl: `${dmp.url}/_sim/documents` },
      studies: studies.map((s) => {
        const p = published.find((j) => j.studies.includes(s.studyInstanceUid));
        return { box: 'box-a', studyInstanceUid: s.studyInstanceUid, patientIns: s.patient.ins, modality: s.modality, description: s.description, kosUid: p?.kosUid, state: p?.state ?? 'unknown' };
      }),
    };
    if (batch) manifest.screening = { batchId: batch, worklistUrl: `${boxB.userUrl}/viewer/screening.html?batch=${batch}`, cases: screening!.rows.length };
    writeFileSync(join(runDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
    return { manifest, boxes: { 'box-a': boxA, 'box-b': boxB, ...(boxC ? { 'box-c': boxC } : {}) }, pki, psc, dmp, registry, close };
  } catch (e) {
    await close();
    throw e;
  }
}

interface DemoBoxOptions {
  name: 'box-a' | 'box-b' | 'box-c';
  roles: ('source' | 'consumer')[];
  ports: { user: number; peer: number; iocm?: number };
  secret: string;
  pki: DevPki;
  runDir: string;
  logLevel: string;
  registry: StartedRegistry;
  psc: PscSimulator;
  dmp: DmpSimulator;
  roleOptions?: RoleOptions;
  /** more configuration sections */
  extra?: Record<string, unknown>;
}

async function startDemoBox(o: DemoBoxOptions): Promise<Box> {
  const id = o.pki.boxes[o.name];
  const raw = {
    box: { name: o.name, organization: id.organization, retrieveLocationUid: { 'box-a': '1.2.250.1.999.1.1', 'box-b': '1.2.250.1.999.1.2', 'box-c': '1.2.250.1.999.1.3' }[o.name] },
    dataDir: join(o.runDir, o.name),
    roles: o.roles,
    user: { port: o.ports.user, publicUrl: `https://127.0.0.1:${o.ports.user}`, tls: { cert: id.chain, key: id.key } },
    peer: { port: o.ports.peer, publicUrl: `https://127.0.0.1:${o.ports.peer}`, tls: { cert: id.chain, key: id.key, ca: o.pki.ca.cert, crlFiles: [o.pki.crl] } },
    // the source role: the demo RIS and PACS run on this machine, so only 127.0.0.1 may send
    ...(o.roles.includes('source') ? {
      hl7: { port: 1, allowedSenders: ['127.0.0.1'] },
      ...(o.ports.iocm ? { source: { iocmPort: o.ports.iocm, iocmCallingAets: [DEMO_PACS_AET], iocmAllowedAddresses: ['127.0.0.1'] } } : {}),
    } : {}),
    admin: { token: randomBytes(24).toString('base64url') },
    log: { level: o.logLevel },
    pacs: { kind: 'folder', path: join(o.runDir, o.name, 'pacs') },
    dmp: {
      registryUrl: o.dmp.registryUrl, repositoryUrl: o.dmp.repositoryUrl, ca: o.pki.ca.cert,
      finess: FINESS, sourceId: { 'box-a': '1.2.250.1.999.2.1', 'box-b': '1.2.250.1.999.2.2', 'box-c': '1.2.250.1.999.2.3' }[o.name],
    },
    psc: { issuer: o.psc.issuer, clientId: o.name, clientSecret: o.secret },
    allowList: { url: o.registry.allowListUrl, trustAnchors: [o.pki.ca.cert], enrolUrl: o.registry.url, supportContact: 'support@demo.invalid' },
    ...o.extra,
  };
  const config: DrimboxConfig = validateConfig(raw as never);
  if (config.hl7) config.hl7.port = 0; // any free port; reported in box.addresses.mllp
  return startBox(config, { logger: createLogger(o.logLevel, o.name), plugins: pluginsFor(config, o.roleOptions) });
}

/** An undici Agent trusting the dev CA and presenting the demo client's certificate (mutual TLS). */
export function demoClientAgent(files: { ca: string; cert: string; key: string }): Agent {
  return new Agent({ connect: { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) } });
}

/** The demo client (the identity of the printed curl command) is a listed peer like a box. */
async function enrolDemoClient(pki: DevPki, registry: StartedRegistry): Promise<void> {
  const agent = demoClientAgent({ ca: pki.ca.cert, cert: pki.demoClient.cert, key: pki.demoClient.key });
  try {
    const r = await request(`${registry.url}/enrolments`, {
      method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ boxHost: 'demo-client.localhost', operatorName: 'Demo client', supportContact: 'support@demo.invalid' }),
    });
    if (r.statusCode !== 201 && r.statusCode !== 200) throw new Error(`demo client enrolment refused: ${r.statusCode} ${await r.body.text()}`);
    await r.body.dump();
  } finally {
    await agent.close();
  }
}

async function seedFolderPacs(box: Box, studies: DemoStudy[]): Promise<void> {
  for (const s of studies) {
    const r = await box.pacs.store((async function* () { yield* s.files; })());
    if (r.failed.length) throw new Error(`demo study ${s.key}: ${r.failed.length} instance(s) not stored: ${r.failed[0].reason}`);
  }
}

interface PublishedView { state: string; studies: string[]; kosUid?: string }
/** admin API states of a job that will not move any more */
const SETTLED = new Set(['published', 'withdrawn', 'not-published', 'failed']);

/** Polls box-a's admin API until every demo report is published (or failed). */
async function waitForPublications(box: Box, count: number, timeoutMs = 60_000): Promise<PublishedView[]> {
  const agent = new Agent({ connect: { ca: readFileSync(box.config.peer.tls.ca) } });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await request(`${box.userUrl}/admin/publications?pageSize=100`, { dispatcher: agent, headers: { authorization: `Bearer ${box.config.admin.token}` } });
      const { items } = await r.body.json() as { items: PublishedView[] };
      const settled = items.filter((j) => SETTLED.has(j.state));
      if (settled.length >= count || Date.now() > deadline) return items;
      await new Promise((res) => setTimeout(res, 250));
    }
  } finally {
    await agent.close();
  }
}

/**
 * The demo screening batch on box-b, created through its API as the first test clinician (a session
 * made with a PSC token of theirs): the prefetch starts at once, under that identity.
 */
async function createDemoBatch(box: Box, psc: PscSimulator, rows: unknown[]): Promise<string> {
  const c = psc.clinicians[0];
  const accessToken = await psc.issueAccessToken({ rpps: c.rpps, clientId: 'box-b', ttlSeconds: 12 * 3600 });
  const name = `${c.givenName ?? ''} ${c.familyName ?? ''}`.trim();
  const s = await box.services.sessions!.create({ rpps: c.rpps, nationalId: `8${c.rpps}`, sub: `demo-${c.rpps}`, name, givenName: c.givenName, familyName: c.familyName }, { accessToken, accessTokenExpiresAt: Date.now() + 12 * 3600_000 });
  const agent = new Agent({ connect: { ca: readFileSync(box.config.peer.tls.ca) } });
  try {
    const r = await request(`${box.userUrl}/api/screening/batches`, {
      method: 'POST', dispatcher: agent,
      headers: { cookie: `${SESSION_COOKIE}=${s.id}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ name: 'Démo — 2e lecture, 20 mammographies', priorsWanted: 1, dueDate: new Date(Date.now() + 15 * 86400_000).toISOString().slice(0, 10), rows }),
    });
    const body = await r.body.json() as { id?: string; detail?: string };
    if (r.statusCode !== 201 || !body.id) throw new Error(`demo screening batch refused: ${r.statusCode} ${body.detail ?? ''}`);
    return body.id;
  } finally {
    await agent.close();
  }
}

function launcherEntries(studies: DemoStudy[], source: Box): LauncherEntry[] {
  const byPatient = new Map<string, DemoStudy[]>();
  for (const s of studies) byPatient.set(s.patient.ins, [...(byPatient.get(s.patient.ins) ?? []), s]);
  return [...byPatient.values()].map((ss) => {
    const p = ss[0].patient;
    return {
      label: `${p.birthName} ${p.givenNames[0]} — ${ss.map((s) => `${s.modality} ${s.date}`).join(', ')}`,
      form: {
        'Patient.identifier.value': p.ins,
        'Patient.identifier.system': `urn:oid:${TEST_INS_OID}`,
        'Patient.name.family': p.birthName,
        'Patient.name.given': p.givenNames.join(' '),
        'Patient.gender': p.sex === 'F' ? 'female' : 'male',
        'Patient.birthDate': `${p.birthDate.slice(0, 4)}-${p.birthDate.slice(4, 6)}-${p.birthDate.slice(6)}`,
        'Address.district': p.birthPlace,
        InformationEtOppositionConsultation: 'true',
        PatientID: p.ipp,
        PatientIDIssuer: p.ippOid,
      },
      reportLinks: ss.map((s) => ({
        label: `Lien du compte rendu : ${s.description} (${s.date}) — viewer de box-a, la source`,
        href: `${source.userUrl}/IHEInvokeImageDisplay?requestType=STUDY&studyUID=${s.studyInstanceUid}&accessionNumber=${s.accessionNumber}`,
      })),
    };
  });
}

function describe(box: Box, pki: DevPki): BoxManifest {
  const id = pki.boxes[box.config.box.name];
  return {
    name: box.config.box.name,
    roles: box.config.roles,
    userUrl: box.userUrl,
    peerUrl: box.peerUrl,
    mllp: box.addresses.mllp,
    iocm: box.addresses.iocm ? { ...box.addresses.iocm, aeTitle: box.config.source.iocmAet, callingAets: box.config.source.iocmCallingAets } : undefined,
    cert: id.chain,
    key: id.key,
    ca: pki.ca.cert,
    adminToken: box.config.admin.token,
  };
}
