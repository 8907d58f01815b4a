// `drimbox --version`, and `drimbox healthcheck --config FILE`, the container's probe: the box's own
// /healthz over loopback on the port its config names, the listener's certificate pinned.
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawTestBoxConfig, startTestBox } from '../helpers/box.js';
import { testPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { drimbox, writeConfig } from '../helpers/cli.js';
import { trustLayer } from '../../gateway/src/trust/layer.js';
import { dmpService } from '../../gateway/src/dmp/service.js';

t.test('drimbox --version prints the version of package.json', async (t) => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const r = await drimbox(['--version']);
  t.equal(r.status, 0);
  t.equal(r.stdout.trim(), `drimbox ${version}`);
});

t.test('drimbox healthcheck', async (t) => {
  const pacs = { kind: 'folder', path: mkdtempSync(join(tmpdir(), 'probe-pacs-')) };
  const extra = { roles: ['source'] };
  // a box with only its PACS to check is healthy; one whose trust layer and DMP service find no PSC
  // and no DMP configured says it cannot do its job
  const healthy = await startTestBox({ pacs, extra });
  t.teardown(() => healthy.close());
  const unhealthy = await startTestBox({ pacs, extra, boxOptions: { plugins: [trustLayer, dmpService] } });
  t.teardown(() => unhealthy.close());
  const raw = await rawTestBoxConfig({ pacs, extra });
  const userPort = Number(new URL(healthy.userUrl).port);
  const at = (port: number, more: Record<string, unknown> = {}) => writeConfig({ ...raw, user: { ...(raw.user as object), port, ...more } });

  const ok = await drimbox(['healthcheck', '--config', at(userPort)]);
  t.equal(ok.status, 0, `a healthy box passes its probe (${ok.stdout.trim()} ${ok.stderr.trim()})`);
  t.equal(ok.stdout.trim(), 'ok', 'printing its /healthz status');
  const unhealthyConfig = at(Number(new URL(unhealthy.userUrl).port));
  const probe = await drimbox(['healthcheck', '--config', unhealthyConfig]);
  t.equal(probe.status, 0, `a box whose DMP and PSC are missing can still serve: its probe passes, the container is not restarted (${probe.stdout.trim()} ${probe.stderr.trim()})`);
  t.equal(probe.stdout.trim(), 'ok');
  const deps = await drimbox(['healthcheck', '--config', unhealthyConfig, '--dependencies']);
  t.equal(deps.status, 1, `--dependencies: the box cannot do its whole job (${deps.stdout.trim()} ${deps.stderr.trim()})`);
  t.match(deps.stdout, /^unhealthy; /m);
  t.match(deps.stdout, /; dmp down/, 'naming the dependencies that are down');
  t.match(deps.stdout, /; psc down/);

  const down = await drimbox(['healthcheck', '--config', at(await freePort())]);
  t.equal(down.status, 1, 'no box on the port: the probe fails');
  t.match(down.stderr, /\/healthz on 127\.0\.0\.1:\d+: .*ECONNREFUSED/);

  const pki = await testPki();
  const wrong = await drimbox(['healthcheck', '--config', at(userPort, { tls: { cert: pki.boxes['box-b'].chain, key: pki.boxes['box-b'].key } })]);
  t.equal(wrong.status, 1);
  t.match(wrong.stderr, /does not present user\.tls\.cert/, 'a listener with another certificate is not taken for the box');
});
