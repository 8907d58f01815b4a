// CLI: `tsx registry/src/main.ts serve --config FILE` — run the enrolment registry.
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { startRegistry } from './app.js';
import { loadRegistryConfig, RegistryConfigError } from './config.js';

const USAGE = 'usage: registry serve --config FILE';

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd !== 'serve') {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  const i = rest.indexOf('--config');
  const file = i >= 0 ? rest[i + 1] : undefined;
  if (!file) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  let cfg;
  try {
    cfg = loadRegistryConfig(file);
  } catch (e) {
    if (e instanceof RegistryConfigError) {
      process.stderr.write(e.message + '\n');
      return 2;
    }
    throw e;
  }
  const logger = pino({ name: 'registry', level: cfg.logLevel });
  const reg = await startRegistry({ ...cfg, logger });
  logger.info({ url: reg.url, allowList: reg.allowListUrl, autoApprove: Boolean(cfg.autoApprove) }, 'registry listening');
  const stop = () => void reg.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => { if (code !== 0) process.exit(code); }, (e) => {
    process.stderr.write(`registry: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
