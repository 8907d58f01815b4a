// `npm start`: the whole demo network on loopback with embedded defaults; Ctrl-C stops it.
import { startDemoNetwork } from './network.js';

const net = await startDemoNetwork({ logLevel: process.env.DRIMBOX_LOG_LEVEL ?? 'warn' });
const m = net.manifest;
const a = m.boxes[0];
const study = m.studies.find((s) => s.modality === 'MG') ?? m.studies[0];
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
console.log(`
DRIMbox demo network is running (Ctrl-C to stop)

  box-a (source)   user ${a.userUrl}   peer ${a.peerUrl}
                   health ${a.userUrl}/healthz   metrics ${a.userUrl}/metrics
                   admin token ${a.adminToken}

  Demo studies in box-a's PACS:
${m.studies.map((s) => `    ${s.modality.padEnd(3)} ${s.description.padEnd(40)} ${s.studyInstanceUid}`).join('\n')}

  Retrieve a study through the peer API (mutual TLS, demo client certificate):
    curl --cacert ${q(m.demoClient.ca)} --cert ${q(m.demoClient.cert)} --key ${q(m.demoClient.key)} \\
      -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*' \\
      -o study.multipart ${a.peerUrl}/dicom-web/studies/${study.studyInstanceUid}

  Machine-readable description: sandbox/.run/manifest.json
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
