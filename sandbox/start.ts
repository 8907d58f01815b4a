// `npm start`: the whole demo DRIM-M network on loopback with embedded defaults; Ctrl-C stops it.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { demoClientAgent, startDemoNetwork } from './network.js';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
if (!existsSync(join(root, 'viewer', 'dist', 'index.html'))) {
  console.log('building the viewer (first start only)…');
  execFileSync(join(root, 'node_modules', '.bin', 'vite'), ['build', '--config', 'viewer/vite.config.ts', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
}

console.log('starting the demo network (registry, PSC, DMP, box-a source + consumer, box-b consumer, box-c source)…');
const net = await startDemoNetwork({
  logLevel: process.env.DRIMBOX_LOG_LEVEL ?? 'warn',
  runDir: process.env.DRIMBOX_DEMO_RUN_DIR || undefined,
  pkiDir: process.env.DRIMBOX_DEMO_PKI_DIR || undefined,
  screening: true,
});
const m = net.manifest;
const [a, b, c] = m.boxes;
const study = m.studies.find((s) => s.modality === 'MG' && s.kosUid) ?? m.studies.find((s) => s.kosUid) ?? m.studies[0];
const clinician = m.psc.clinicians[0];
const token = await net.psc.issueAccessToken({ rpps: clinician.rpps, clientId: 'box-b', ttlSeconds: 3600 });
const docs = await dmpDocuments().catch(() => undefined);
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

console.log(`
DRIMbox demo network is running (Ctrl-C to stop). Certificates: dev CA ${m.demoClient.ca}
(your browser will warn about it: it is the sandbox's own CA).

  Open the consumer's launcher: ${b.launcherUrl}
    → a contextual call, PSC login (pick a test clinician), the viewer with images pulled from box-a.

  box-a (source)    user ${a.userUrl}   peer ${a.peerUrl}   MLLP ${a.mllp?.host}:${a.mllp?.port}
${a.iocm ? `                    IOCM rejection notes: storescu -aet ${a.iocm.callingAets[0]} -aec ${a.iocm.aeTitle} ${a.iocm.host} ${a.iocm.port} NOTE.dcm\n` : ''}                    admin: curl --cacert ${q(m.demoClient.ca)} -H 'Authorization: Bearer ${a.adminToken}' ${a.userUrl}/admin/publications
  box-b (consumer)  user ${b.userUrl}   peer ${b.peerUrl}   contextual call POST ${b.contextualCallUrl}
${c ? `  box-c (source)    user ${c.userUrl}   peer ${c.peerUrl}   MLLP ${c.mllp?.host}:${c.mllp?.port}\n` : ''}  registry          ${m.registry.url}/admin  (signed allow-list ${m.registry.allowListUrl})
  PSC simulator     ${m.psc.issuer}
  DMP simulator     ${m.dmp.documentsUrl}

  Published to the DMP by box-a:
${m.studies.map((s) => `    ${s.state.padEnd(9)} ${s.modality.padEnd(3)} ${s.description.padEnd(38)} KOS ${s.kosUid ?? '—'}`).join('\n')}
${Array.isArray(docs) ? `  The DMP holds ${docs.length} document entries.\n` : ''}
  Retrieve a study through box-a's peer API (mutual TLS with the demo client certificate, a PSC token
  of ${clinician.name || clinician.rpps}, and the KOS that grants access):
    curl --cacert ${q(m.demoClient.ca)} --cert ${q(m.demoClient.cert)} --key ${q(m.demoClient.key)} \\
      -H 'Authorization: Bearer ${token}' -H 'KOS-SOPInstanceUID: ${study.kosUid ?? ''}' \\
      -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*' \\
      -o study.multipart ${a.peerUrl}/dicom-web/studies/${study.studyInstanceUid}

${m.screening ? `  Screening second reading: a batch of ${m.screening.cases} mammograms (priors, a missing view, swapped labels)
  from box-a and box-c, prefetched by box-b as ${clinician.name || clinician.rpps}. Worklist:
    ${m.screening.worklistUrl}
    (progress: drimbox batch status ${m.screening.batchId} --url ${b.userUrl} --session <your drimbox_session cookie> --ca ${q(m.demoClient.ca)})

` : ''}  Machine-readable description: ${process.env.DRIMBOX_DEMO_RUN_DIR ?? 'sandbox/.run'}/manifest.json
`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('stopping…');
  await net.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

/** The DMP simulator's view of what it holds (sandbox only), read with the demo client's certificate. */
async function dmpDocuments(): Promise<unknown[]> {
  const agent = demoClientAgent(m.demoClient);
  try {
    const r = await request(m.dmp.documentsUrl, { dispatcher: agent });
    const body = await r.body.json() as unknown;
    return Array.isArray(body) ? body : ((body as { documents?: unknown[] }).documents ?? []);
  } finally {
    await agent.close();
  }
}
