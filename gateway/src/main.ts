// The drimbox command line: `drimbox serve --config FILE`, `drimbox allowlist verify FILE …`, and the
// operations commands (doctor, backup, restore, healthcheck) in ops/.
import { loadConfig, ConfigError } from './config/load.js';
import { startBox } from './box.js';
import { pluginsFor } from './roles.js';

const USAGE = `usage:
  drimbox serve --config FILE          run a box (every key can be overridden by DRIMBOX_* variables)
  drimbox allowlist verify FILE [--trust-anchor PEM ...]
                                       check a signed DRIM-M allow-list and print its entries
  drimbox audit verify --config FILE   check the audit trail's hash chain; exits 1 naming the first broken row
  drimbox batch create FILE.csv [--name N] [--priors N] [--due YYYY-MM-DD] --url URL --session VALUE [--ca PEM]
                                       create a screening batch (second reading) from a CSV file
  drimbox batch status ID --url URL --session VALUE [--ca PEM] [--once]
                                       follow a batch's prefetch with a live progress bar (env DRIMBOX_URL, DRIMBOX_SESSION, DRIMBOX_CA)
  drimbox doctor --config FILE         check the config, the certificates, and reach every dependency it names
  drimbox backup FILE --config CONFIG  online backup of the box database (SQLite file, or pg_dump custom format)
  drimbox restore FILE --config CONFIG [--force]
                                       put a backup in place of the box database (the box stopped)
  drimbox healthcheck --config FILE [--dependencies]
                                       GET /healthz (this instance can serve) on the box's own user
                                       listener, or /healthz/dependencies (PACS, DMP, PSC…): exit 0 only on 200
  drimbox --version                    print the version`;

const STOP_TIMEOUT_MS = 15_000;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'serve') {
    const i = rest.indexOf('--config');
    const file = i >= 0 ? rest[i + 1] : undefined;
    if (i >= 0 && !file) { console.error('drimbox: --config needs a FILE'); return 2; }
    let config;
    try {
      config = loadConfig(file);
    } catch (e) {
      if (e instanceof ConfigError) { console.error(`drimbox: ${e.message}`); return 2; }
      throw e;
    }
    const box = await startBox(config, { plugins: pluginsFor(config) });
    // a box that cannot close (a stuck request, a stalled source) must still stop: a second signal, or
    // STOP_TIMEOUT_MS after the first, exits at once
    let stopping = false;
    const stop = () => {
      if (stopping) { console.error('drimbox: second signal, exiting now'); process.exit(1); }
      stopping = true;
      setTimeout(() => { console.error(`drimbox: not closed after ${STOP_TIMEOUT_MS} ms, exiting`); process.exit(1); }, STOP_TIMEOUT_MS).unref();
      box.close().then(() => process.exit(0), (e: unknown) => { console.error(`drimbox: close failed: ${e instanceof Error ? e.message : e}`); process.exit(1); });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    return -1; // keep running
  }
  if (cmd === 'audit' && rest[0] === 'verify') {
    const { auditVerifyCommand } = await import('./store/audit-cli.js');
    return auditVerifyCommand(rest.slice(1));
  }
  if (cmd === 'batch') {
    const { batchCommand } = await import('./screening/cli.js');
    return batchCommand(rest);
  }
  if (cmd === '--version' || cmd === 'version') {
    const { boxVersion } = await import('./ops/version.js');
    console.log(`drimbox ${boxVersion()}`);
    return 0;
  }
  if (cmd === 'doctor') return (await import('./ops/doctor.js')).doctorCommand(rest);
  if (cmd === 'backup') return (await import('./ops/backup.js')).backupCommand(rest);
  if (cmd === 'restore') return (await import('./ops/backup.js')).restoreCommand(rest);
  if (cmd === 'healthcheck') return (await import('./ops/healthcheck.js')).healthcheckCommand(rest);
  if (cmd === 'allowlist' && rest[0] === 'verify') {
    const { allowlistVerifyCommand } = await import('./trust/cli.js');
    return allowlistVerifyCommand(rest.slice(1));
  }
  console.error(USAGE);
  return cmd === undefined || cmd === '--help' || cmd === 'help' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => { if (code >= 0) process.exit(code); },
  (err) => { console.error(`drimbox: ${err instanceof Error ? err.message : err}`); process.exit(1); },
);
