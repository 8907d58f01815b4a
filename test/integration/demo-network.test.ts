// `npm start` as a newcomer runs it: the demo network comes up with no configuration, publishes the
// demo reports to the DMP, describes itself in manifest.json, the printed peer retrieve works, the
// consumer's launcher is there, and Ctrl-C stops everything cleanly.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { readMultipart, parseContentType } from '../../gateway/src/dicom/multipart.js';

t.test('npm start: demo network, manifest, printed curl retrieve, launcher, clean stop', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'demo-run-'));
  const pkiDir = mkdtempSync(join(tmpdir(), 'demo-pki-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'sandbox/start.ts'], {
    env: { ...process.env, DRIMBOX_DEMO_RUN_DIR: runDir, DRIMBOX_DEMO_PKI_DIR: pkiDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const started = Date.now();
  while (!out.includes('Machine-readable description')) {
    if (child.exitCode !== null) throw new Error(`npm start exited: ${out}`);
    if (Date.now() - started > 180_000) throw new Error(`demo did not come up: ${out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const m = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
  t.same(m.boxes.map((b: { name: string; roles: string[] }) => [b.name, b.roles]), [['box-a', ['source', 'consumer']], ['box-b', ['consumer']], ['box-c', ['source']]]);
  for (const b of m.boxes) t.match(b, { userUrl: /^https:\/\/127\.0\.0\.1:\d+$/, peerUrl: /^https:\/\/127\.0\.0\.1:\d+$/ });
  t.match(m.boxes[0], { mllp: { host: '127.0.0.1', port: Number }, iocm: { host: '127.0.0.1', port: Number, aeTitle: 'DRIMBOX_IOCM', callingAets: ['DEMO_PACS'] } }, 'the source lists its MLLP and IOCM listeners');
  t.notOk(m.boxes[1].mllp ?? m.boxes[1].iocm, 'the consumer-only box has neither');
  t.match(out, new RegExp(`IOCM rejection notes: storescu -aet DEMO_PACS -aec DRIMBOX_IOCM 127\\.0\\.0\\.1 ${m.boxes[0].iocm.port} `), 'and the start-up output says how to reach IOCM');
  t.match(m.boxes[1], { contextualCallUrl: /\/contextual-call$/, launcherUrl: /\/$/ });
  t.ok(m.studies.length >= 3 && m.studies.every((s: { state: string; kosUid?: string }) => s.state === 'published' && s.kosUid), 'every demo report published');
  t.match(m.screening, { cases: 20, worklistUrl: new RegExp(`^${m.boxes[1].userUrl}/viewer/screening\\.html\\?batch=[\\w-]+$`) }, 'a demo screening batch on box-b');
  t.ok(out.includes(m.screening.worklistUrl), 'and its worklist URL is printed');
  t.ok(m.studies.some((s: { modality: string }) => s.modality === 'MG'), 'a mammography study');

  // the printed curl command, run as printed (mTLS + PSC token + KOS)
  const curl = /curl --cacert '([^']+)' --cert '([^']+)' --key '([^']+)' \\\n\s+-H 'Authorization: Bearer ([^']+)' -H 'KOS-SOPInstanceUID: ([^']+)' \\\n\s+-H 'Accept: ([^']+)' \\\n\s+-o study\.multipart (\S+)/.exec(out);
  t.ok(curl, 'a curl command is printed');
  const [, ca, cert, key, token, kos, accept, url] = curl!;
  const agent = new Agent({ connect: { ca: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key) } });
  const r = await request(url, { dispatcher: agent, headers: { authorization: `Bearer ${token}`, 'kos-sopinstanceuid': kos, accept } });
  t.equal(r.statusCode, 200);
  let parts = 0;
  for await (const p of readMultipart(r.body, parseContentType(r.headers['content-type'] as string).params.boundary)) {
    const chunks: Buffer[] = [];
    for await (const c of p.body) chunks.push(c as Buffer);
    t.equal(Buffer.concat(chunks).subarray(128, 132).toString(), 'DICM');
    parts++;
  }
  t.ok(parts >= 4, `the study streamed (${parts} instances)`);

  const launcher = await request(m.boxes[1].launcherUrl, { dispatcher: new Agent({ connect: { ca: readFileSync(ca) } }) });
  t.equal(launcher.statusCode, 200);
  const page = await launcher.body.text();
  t.match(page, /Appel contextuel/);
  // a report link opens box-a's viewer flow: PSC login first
  const link = /href="([^"]*IHEInvokeImageDisplay[^"]*)"/.exec(page)![1].replace(/&amp;|&#38;/g, '&');
  const iid = await request(link, { dispatcher: new Agent({ connect: { ca: readFileSync(ca) } }), headers: { accept: 'text/html' } });
  t.equal(iid.statusCode, 302, 'report link → login');
  t.match(iid.headers.location, /\/auth\/login\?returnTo=/);
  await iid.body.dump();

  // the viewer: its page revalidated, its content-hashed assets kept by the browser
  const caAgent = new Agent({ connect: { ca: readFileSync(ca) } });
  const viewer = await request(`${m.boxes[1].userUrl}/viewer/`, { dispatcher: caAgent });
  t.equal(viewer.statusCode, 200);
  t.equal(viewer.headers['cache-control'], 'no-cache');
  t.match(viewer.headers['content-security-policy'], /'wasm-unsafe-eval'/);
  const asset = /(?:src|href)="(\/viewer\/assets\/[^"]+\.js)"/.exec(await viewer.body.text())![1];
  const a = await request(`${m.boxes[1].userUrl}${asset}`, { dispatcher: caAgent });
  await a.body.dump();
  t.equal(a.headers['cache-control'], 'public, max-age=31536000, immutable');

  child.kill('SIGINT');
  const code = await new Promise((res) => child.once('exit', res));
  t.equal(code, 0, 'Ctrl-C stops everything cleanly');
  await agent.close();
});
