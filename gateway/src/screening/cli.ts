// `drimbox batch create FILE.csv` and `drimbox batch status ID`: a clinician's terminal talking to the
// box's screening API with their PSC session (the cookie value of a browser login, DRIMBOX_SESSION),
// so the batch prefetches under their identity. `status` follows the Server-Sent Events stream and
// redraws one progress bar until the batch is ready (or stopped).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Agent, request } from 'undici';
import type { Batch } from './types.js';

interface Target { url: string; cookie: string; dispatcher: Agent }

function target(args: string[]): Target | string {
  const opt = (name: string, env: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : process.env[env];
  };
  const url = opt('--url', 'DRIMBOX_URL');
  const session = opt('--session', 'DRIMBOX_SESSION');
  const ca = opt('--ca', 'DRIMBOX_CA');
  if (!url || !session) return 'needs --url https://BOX (or DRIMBOX_URL) and --session VALUE (or DRIMBOX_SESSION: the drimbox_session cookie of your PSC login)';
  return { url: url.replace(/\/$/, ''), cookie: `drimbox_session=${session}`, dispatcher: new Agent({ connect: ca ? { ca: readFileSync(ca) } : {} }) };
}

const positional = (args: string[]) => args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));

/** one line: name, state, a bar of the cases settled, instances and bytes */
export function progressLine(b: Batch, width = 30): string {
  const settled = b.counts.ready + b.counts.failed;
  const frac = b.counts.total ? settled / b.counts.total : 1;
  const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
  const mb = (n: number) => (n / 1024 ** 2).toFixed(1);
  return `${b.name} [${bar}] ${settled}/${b.counts.total} dossiers (${b.counts.ready} prêts, ${b.counts.failed} en échec, ${b.counts.fetching} en cours) · ${b.instances.done}/${b.instances.total} images · ${mb(b.bytes.done)}/${mb(b.bytes.total)} Mo · ${b.state}${b.pauseReason ? ` (${b.pauseReason})` : ''}`;
}

async function problem(r: Awaited<ReturnType<typeof request>>): Promise<string> {
  const text = await r.body.text();
  try { const p = JSON.parse(text) as { title?: string; detail?: string }; return `${r.statusCode} ${p.title ?? ''}${p.detail ? `: ${p.detail}` : ''}`; } catch { return `${r.statusCode} ${text.slice(0, 200)}`; }
}

export async function batchCommand(args: string[]): Promise<number> {
  const [sub] = args;
  const t = target(args.slice(1));
  if (typeof t === 'string') { console.error(`drimbox batch: ${t}`); return 2; }
  try {
    if (sub === 'create') {
      const file = positional(args.slice(1))[0];
      if (!file) { console.error('usage: drimbox batch create FILE.csv [--name NAME] [--priors N] [--due YYYY-MM-DD]'); return 2; }
      const i = (n: string) => { const k = args.indexOf(n); return k >= 0 ? args[k + 1] : undefined; };
      const q = new URLSearchParams({ name: i('--name') ?? basename(file).replace(/\.csv$/i, '') });
      if (i('--priors')) q.set('priorsWanted', i('--priors')!);
      if (i('--due')) q.set('dueDate', i('--due')!);
      const r = await request(`${t.url}/api/screening/batches?${q}`, { method: 'POST', dispatcher: t.dispatcher, headers: { cookie: t.cookie, 'content-type': 'text/csv', accept: 'application/json' }, body: readFileSync(file) });
      if (r.statusCode !== 201) { console.error(`drimbox batch: refused: ${await problem(r)}`); return 1; }
      const b = await r.body.json() as Batch;
      console.log(`${b.id}\t${progressLine(b)}`);
      return 0;
    }
    if (sub === 'status') {
      const id = positional(args.slice(1))[0];
      if (!id) { console.error('usage: drimbox batch status ID [--once]'); return 2; }
      return await status(t, id, args.includes('--once'));
    }
    console.error('usage: drimbox batch create FILE.csv | drimbox batch status ID');
    return 2;
  } finally {
    await t.dispatcher.close();
  }
}

const DONE = new Set(['ready', 'closed', 'cancelled', 'paused', 'psc-reconnect']);

async function status(t: Target, id: string, once: boolean): Promise<number> {
  const r = await request(`${t.url}/api/screening/batches/${encodeURIComponent(id)}/events`, { dispatcher: t.dispatcher, headers: { cookie: t.cookie, accept: 'text/event-stream' } });
  if (r.statusCode !== 200) { console.error(`drimbox batch: ${await problem(r)}`); return 1; }
  const tty = process.stdout.isTTY;
  let buf = '';
  let last: Batch | undefined;
  for await (const chunk of r.body) {
    buf += (chunk as Buffer).toString('utf8');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!/^event: batch$/m.test(block)) continue;
      last = JSON.parse(block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')) as Batch;
      // on a terminal the bar is redrawn in place; piped, one line per change
      process.stdout.write(tty ? `\r\x1b[2K${progressLine(last)}` : `${progressLine(last)}\n`);
      if (once || DONE.has(last.state)) {
        if (tty) process.stdout.write('\n');
        r.body.destroy();
        return last.state === 'ready' || last.state === 'closed' ? 0 : 1;
      }
    }
  }
  return last ? 0 : 1;
}
