// `drimbox healthcheck --config FILE [--dependencies]`: the container's probe. GETs /healthz (can this
// instance serve?) on the box's own user listener over loopback (the port from the config, overrides
// included) and exits 0 only on 200. `--dependencies` asks /healthz/dependencies instead (can the box
// do its whole job: PACS, DMP, PSC, allow-list…), for operators and monitoring, not for the probe.
// The box's certificate names its public host, not 127.0.0.1: instead of skipping verification the
// probe checks that the listener presents exactly the configured certificate.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { loadConfig, ConfigError } from '../config/load.js';
import { parseArgs, UsageError } from './args.js';

export async function healthcheckCommand(args: string[]): Promise<number> {
  let config;
  let path: string;
  try {
    const parsed = parseArgs(args, ['--config'], ['--dependencies']);
    const file = parsed.options['--config'];
    if (!file) throw new UsageError('usage: drimbox healthcheck --config FILE [--dependencies]');
    path = parsed.flags.has('--dependencies') ? '/healthz/dependencies' : '/healthz';
    config = loadConfig(file);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) { console.error(`drimbox: ${e.message}`); return 2; }
    throw e;
  }
  const expected = new X509Certificate(readFileSync(config.user.tls.cert)).fingerprint256;
  const host = ['0.0.0.0', '::'].includes(config.user.host) ? '127.0.0.1' : config.user.host;
  return new Promise<number>((resolve) => {
    const req = request({ host, port: config.user.port, path, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      const presented = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      if (presented !== expected) {
        console.error(`drimbox: ${host}:${config.user.port} does not present user.tls.cert`);
        res.destroy();
        return resolve(1);
      }
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => {
        let summary = `HTTP ${res.statusCode}`;
        try {
          const h = JSON.parse(body) as { status: string; checks: { name: string; state: string }[] };
          summary = `${h.status}${h.checks.filter((c) => c.state !== 'ok').map((c) => `; ${c.name} ${c.state}`).join('')}`;
        } catch { /* not the box's JSON: the status code says it */ }
        console.log(summary);
        resolve(res.statusCode === 200 ? 0 : 1);
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (e) => { console.error(`drimbox: ${path} on ${host}:${config.user.port}: ${e.message}`); resolve(1); });
    req.end();
  });
}
