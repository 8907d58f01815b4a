// The enrolment registry end to end: a box enrols over mTLS, the operator approves, the published
// list verifies with our verifier AND xmlsec1, a box's AllowListClient follows approve/revoke.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Agent, request } from 'undici';
import pino from 'pino';
import { ensureDevPki, createCa, issueCertificate } from '../../certs/pki.js';
import { startRegistry, type StartedRegistry } from '../../registry/src/app.js';
import { verifyAllowList } from '../../gateway/src/trust/allowlist.js';
import { AllowListClient } from '../../gateway/src/trust/allowlist-client.js';
import { freePort } from '../helpers/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'registry-'));
const pki = await ensureDevPki(join(dir, 'pki'), { boxes: ['box-a', 'box-b'] });
const caPem = readFileSync(pki.ca.cert, 'utf8');
const adminToken = randomBytes(24).toString('hex');
const read = (f: string) => readFileSync(f, 'utf8');

function registryOptions(dbFile: string, autoApprove = false) {
  return {
    tls: { certPem: read(pki.registry.chain), keyPem: read(pki.registry.key), clientCaPem: caPem },
    signer: { keyPem: read(pki.signer.key), chainPem: read(pki.signer.chain) },
    adminToken, dbFile, autoApprove,
  };
}

function agentFor(box?: string, other?: { certPem: string; keyPem: string }): Agent {
  const id = box ? pki.boxes[box] : undefined;
  return new Agent({ connect: { ca: caPem, servername: 'localhost', cert: other?.certPem ?? (id && read(id.chain)), key: other?.keyPem ?? (id && read(id.key)) } });
}

async function call(reg: StartedRegistry, path: string, o: { method?: string; agent?: Agent; body?: unknown; admin?: boolean } = {}) {
  const res = await request(reg.url + path, {
    method: (o.method ?? 'GET') as 'GET',
    dispatcher: o.agent ?? agentFor(),
    headers: { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(o.admin ? { authorization: `Bearer ${adminToken}` } : {}) },
    body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
  });
  const text = await res.body.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.statusCode, type: String(res.headers['content-type']), text, json };
}

function xmlsec(file: string): { code: number | null; out: string } {
  const r = spawnSync('xmlsec1', ['--verify', '--trusted-pem', pki.ca.cert, '--id-attr:Id', 'SignedProperties', file], { encoding: 'utf8' });
  if (r.error) throw new Error(`xmlsec1 is required for this test: ${r.error.message}`);
  return { code: r.status, out: r.stdout + r.stderr };
}

t.test('enrol → approve → signed list → revoke', async (t) => {
  const reg = await startRegistry({ ...registryOptions(join(dir, 'reg.sqlite')), port: await freePort() });
  t.teardown(() => reg.close());
  const boxA = agentFor('box-a');

  // Empty list at start, already signed.
  const empty = await call(reg, '/allowlist.xml');
  t.equal(empty.status, 200);
  t.match(empty.type, /application\/xml/);
  t.equal((await verifyAllowList(empty.text, { trustAnchors: [caPem] })).list.entries.length, 0);

  // Refusals: no client certificate, a certificate of another CA, a DN in the body, bad host.
  const noCert = await call(reg, '/enrolments', { method: 'POST', body: { boxHost: 'box-a.localhost', operatorName: 'Centre A' } });
  t.equal(noCert.status, 401, 'no client certificate: refused');
  t.match(noCert.type, /application\/problem\+json/);
  const evilCa = await createCa('Evil CA');
  const evil = await issueCertificate(evilCa, { commonName: 'box-a', organization: 'Centre box-a', usage: 'client' });
  t.equal((await call(reg, '/enrolments', { method: 'POST', agent: agentFor(undefined, evil), body: { boxHost: 'evil.localhost', operatorName: 'Evil' } })).status, 401, 'certificate of another CA: refused');
  const withDn = await call(reg, '/enrolments', { method: 'POST', agent: boxA, body: { boxHost: 'box-a.localhost', operatorName: 'Centre A', dn: 'CN=someone-else' } });
  t.equal(withDn.status, 400);
  t.match(withDn.json.detail, /unknown field\(s\): dn/);
  t.equal((await call(reg, '/enrolments', { method: 'POST', agent: boxA, body: { boxHost: 'not a host!', operatorName: 'A' } })).status, 400);
  t.equal((await call(reg, '/enrolments', { method: 'POST', agent: boxA, body: { boxHost: 'box-a.localhost' } })).status, 400, 'operatorName required');
  const badJson = await request(reg.url + '/enrolments', { method: 'POST', dispatcher: boxA, headers: { 'content-type': 'application/json' }, body: '{oops' });
  t.equal(badJson.statusCode, 400, 'malformed JSON: 400');
  await badJson.body.dump();

  // Enrol box-a: DN comes from its certificate.
  const body = { boxHost: 'box-a.localhost', viewerHost: 'viewer-a.localhost', operatorName: 'Centre A & Fils', supportContact: 'support@centre-a.example' };
  const enrolled = await call(reg, '/enrolments', { method: 'POST', agent: boxA, body });
  t.equal(enrolled.status, 201);
  t.equal(enrolled.json.status, 'pending');
  t.equal(enrolled.json.dn, 'CN=box-a,O=Centre box-a,C=FR');
  t.equal((await call(reg, '/enrolments', { method: 'POST', agent: boxA, body })).status, 200, 're-enrolling identically is idempotent');
  t.equal((await call(reg, '/enrolments', { method: 'POST', agent: boxA, body: { ...body, boxHost: 'other.localhost' } })).status, 409, 'changing details needs the operator');
  t.equal((await call(reg, '/enrolments', { method: 'POST', agent: agentFor('box-b'), body: { ...body, operatorName: 'B' } })).status, 409, 'host taken by another certificate');
  t.equal((await call(reg, '/enrolments/self', { agent: boxA })).json.status, 'pending', 'box reads its own status');
  t.equal((await verifyAllowList((await call(reg, '/allowlist.xml')).text, { trustAnchors: [caPem] })).list.entries.length, 0, 'pending is not listed');

  // Operator API needs the credential.
  t.equal((await call(reg, '/enrolments')).status, 401);
  t.equal((await call(reg, `/enrolments/${enrolled.json.id}/approve`, { method: 'POST' })).status, 401);
  const pending = await call(reg, '/enrolments?status=pending', { admin: true });
  t.equal(pending.json.length, 1);
  t.equal((await call(reg, '/enrolments/999/approve', { method: 'POST', admin: true })).status, 404);

  // A box follows the list over HTTPS.
  const boxBClient = new AllowListClient({ url: reg.allowListUrl, trustAnchors: [caPem], expectedSignerSubject: pki.signer.subjectDn,
    tls: { ca: caPem, servername: 'localhost', cert: read(pki.boxes['box-b'].chain), key: read(pki.boxes['box-b'].key) }, logger: pino({ level: 'silent' }) });
  await boxBClient.start();
  t.teardown(() => boxBClient.stop());
  const boxASubject = new X509Certificate(read(pki.boxes['box-a'].cert)).subject;
  t.notOk(boxBClient.isPeerAllowed(boxASubject), 'not yet approved');

  // Approve: the list carries the entry and verifies (ours and xmlsec1).
  const approved = await call(reg, `/enrolments/${enrolled.json.id}/approve`, { method: 'POST', admin: true });
  t.equal(approved.json.status, 'approved');
  const listed = await call(reg, '/allowlist.xml');
  const { list, signer } = await verifyAllowList(listed.text, { trustAnchors: [caPem], expectedSignerSubject: pki.signer.subjectDn });
  t.equal(signer.subject, pki.signer.subjectDn);
  t.equal(list.entries.length, 1);
  t.match(list.entries[0], { id: String(enrolled.json.id), boxHost: 'box-a.localhost', viewerHost: 'viewer-a.localhost', name: 'Centre A & Fils',
    operatorDn: 'CN=box-a,O=Centre box-a,C=FR', supportContact: 'support@centre-a.example' });
  t.match(listed.text, /^<\?xml version="1.0" encoding="UTF-8" standalone="no"\?>\s*<ListeBlancheDRIM-M xmlns="https:\/\/github.com\/ansforge\/DRIM-M_DATA" versionFormat="1.0.0">/);
  t.match(listed.text, /<xades:SigningTime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/xades:SigningTime>/);
  t.match(listed.text, /<DateMAJ>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/DateMAJ>/);
  const f = join(dir, 'list.xml');
  writeFileSync(f, listed.text);
  const ok = xmlsec(f);
  t.equal(ok.code, 0, `xmlsec1 verifies the registry's list: ${ok.out.trim()}`);
  writeFileSync(f, listed.text.replace('box-a.localhost</db>', 'evil.localhost</db>'));
  t.not(xmlsec(f).code, 0, 'xmlsec1 refuses a tampered copy');

  t.equal(await boxBClient.refresh(), true);
  t.ok(boxBClient.isPeerAllowed(boxASubject), 'approved box is allowed');
  t.ok(boxBClient.isSourceHostAllowed('box-a.localhost'));

  // Revoke asks for an explicit confirmation naming the box host; nothing changes without it.
  const id = enrolled.json.id;
  for (const body of [undefined, {}, { confirm: 'box-b.localhost' }]) {
    const unconfirmed = await call(reg, `/enrolments/${id}/revoke`, { method: 'POST', admin: true, body });
    t.equal(unconfirmed.status, 428, `revoke without the right confirmation (${JSON.stringify(body)}) is not done`);
    t.match(unconfirmed.json, { title: 'Confirmation required', boxHost: 'box-a.localhost', detail: /"confirm": "box-a.localhost"/ });
  }
  t.equal((await verifyAllowList((await call(reg, '/allowlist.xml')).text, { trustAnchors: [caPem] })).list.entries.length, 1, 'still listed');
  t.equal((await call(reg, `/enrolments/${id}/revoke`, { method: 'POST', admin: true, body: { confirm: 'box-a.localhost' } })).json.status, 'revoked');
  const after = await verifyAllowList((await call(reg, '/allowlist.xml')).text, { trustAnchors: [caPem] });
  t.equal(after.list.entries.length, 0, 'revoked entry gone');
  await new Promise((r) => setTimeout(r, 1100)); // the list's DateDeGeneration has second precision
  t.equal(await boxBClient.refresh(), true);
  t.notOk(boxBClient.isPeerAllowed(boxASubject), 'revoked box refused');

  // ... and can be undone: re-approving puts the same enrolment back on the list
  const undone = await call(reg, `/enrolments/${id}/approve`, { method: 'POST', admin: true });
  t.match(undone, { status: 200, json: { id, status: 'approved' } }, 'a revocation is undone by re-approving');
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(await boxBClient.refresh(), true);
  t.ok(boxBClient.isPeerAllowed(boxASubject), 're-approved box allowed again');

  // a box that enrolled again after its revocation: the old enrolment cannot come back beside the new one
  t.equal((await call(reg, `/enrolments/${id}/revoke`, { method: 'POST', admin: true, body: { confirm: 'box-a.localhost' } })).json.status, 'revoked');
  const again = await call(reg, '/enrolments', { method: 'POST', agent: boxA, body });
  t.equal(again.status, 201, 'enrolled again (pending)');
  t.match(await call(reg, `/enrolments/${id}/approve`, { method: 'POST', admin: true }), { status: 409, json: { id: again.json.id } }, 'the old enrolment is not re-approved beside the new one');

  const page = await call(reg, '/admin');
  t.equal(page.status, 200);
  t.match(page.text, /DRIM-M enrolment registry/);
});

t.test('auto-approve (demo) lists a box at once; state survives a restart', async (t) => {
  const dbFile = join(dir, 'auto.sqlite');
  const reg = await startRegistry({ ...registryOptions(dbFile, true), port: await freePort() });
  const r = await call(reg, '/enrolments', { method: 'POST', agent: agentFor('box-b'), body: { boxHost: 'box-b.localhost', operatorName: 'Centre B' } });
  t.equal(r.json.status, 'approved');
  t.equal((await verifyAllowList((await call(reg, '/allowlist.xml')).text, { trustAnchors: [caPem] })).list.entries.length, 1);
  await reg.close();
  const again = await startRegistry({ ...registryOptions(dbFile), port: await freePort() });
  t.teardown(() => again.close());
  const { list } = await verifyAllowList((await call(again, '/allowlist.xml')).text, { trustAnchors: [caPem] });
  t.equal(list.entries[0]?.boxHost, 'box-b.localhost', 'approved entry kept across restart');
});

t.test('registry CLI: serve --config FILE', async (t) => {
  const port = await freePort();
  const cfg = join(dir, 'registry.json');
  writeFileSync(cfg, JSON.stringify({
    listen: { host: '127.0.0.1', port },
    tls: { cert: pki.registry.chain, key: pki.registry.key, clientCa: pki.ca.cert },
    signer: { key: pki.signer.key, chain: pki.signer.chain },
    adminToken, db: join(dir, 'cli.sqlite'), logLevel: 'warn',
  }));
  const child = spawn(process.execPath, ['--import=tsx', 'registry/src/main.ts', 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  t.teardown(() => { child.kill('SIGTERM'); });
  const fake = { url: `https://127.0.0.1:${port}` } as StartedRegistry;
  let health;
  for (let i = 0; i < 100 && !health; i++) {
    try { health = await call(fake, '/healthz'); } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  t.equal(health?.status, 200, `registry answered ${stderr}`);
  t.equal((await verifyAllowList((await call(fake, '/allowlist.xml')).text, { trustAnchors: [caPem] })).list.entries.length, 0);

  const bad = spawnSync(process.execPath, ['--import=tsx', 'registry/src/main.ts', 'serve', '--config', join(dir, 'missing.json')], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /cannot read registry config/);
});
