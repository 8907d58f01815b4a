// `drimbox doctor --config FILE`: loads and validates the configuration, then runs every check of
// doctor-checks.ts, printing one line per check (OK or ÉCHEC and what is wrong). Exit 1 on any ÉCHEC.
import { loadConfig, ConfigError } from '../config/load.js';
import type { DrimboxConfig } from '../config/schema.js';
import { parseArgs, UsageError } from './args.js';
import { doctorChecks } from './doctor-checks.js';

const USAGE = 'usage: drimbox doctor --config FILE [--timeout-seconds N]';

type Out = (s: string) => void;
const line = (ok: boolean, name: string, detail: string) => `${ok ? 'OK   ' : 'ÉCHEC'} ${name}: ${detail}`;

export async function doctorCommand(args: string[], out: Out = (s) => process.stdout.write(s + '\n'), err: Out = (s) => process.stderr.write(s + '\n')): Promise<number> {
  let file: string | undefined;
  let timeoutMs = 10_000;
  try {
    const p = parseArgs(args, ['--config', '--timeout-seconds']);
    file = p.options['--config'];
    if (p.options['--timeout-seconds']) timeoutMs = Number(p.options['--timeout-seconds']) * 1000;
    if (!file || p.positional.length || !(timeoutMs > 0)) throw new UsageError('');
  } catch (e) {
    if (e instanceof UsageError) { err(`${e.message ? `drimbox: ${e.message}\n` : ''}${USAGE}`); return 2; }
    throw e;
  }
  let config: DrimboxConfig;
  try {
    config = loadConfig(file); // a stray DRIMBOX_* variable is warned about on stderr, as by serve
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) out(line(false, 'configuration', p));
    return 1;
  }
  out(line(true, 'configuration', `${file} is valid (box ${config.box.name}, roles ${config.roles.join(', ')})`));
  // independent checks run side by side; lines are printed in the config's order
  const results = await Promise.all(doctorChecks(config).map(async (c) => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const detail = await Promise.race([
        c.run(signal),
        new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), { once: true })),
      ]);
      return { name: c.name, ok: true, detail };
    } catch (e) {
      return { name: c.name, ok: false, detail: errorText(e) };
    }
  }));
  for (const r of results) out(line(r.ok, r.name, r.detail));
  const failed = results.filter((r) => !r.ok).length;
  out(failed ? `${failed} check(s) failed` : 'every check passed');
  return failed ? 1 : 0;
}

/** An error and its causes (undici and fetch put the useful part, e.g. ECONNREFUSED, in `cause`). */
function errorText(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c instanceof Error && parts.length < 4; c = c.cause) {
    const code = (c as NodeJS.ErrnoException).code;
    const msg = c.message || code || c.name;
    if (!parts.some((p) => p.includes(msg))) parts.push(code && !msg.includes(code) ? `${msg} (${code})` : msg);
  }
  return parts.join(': ') || String(e);
}
