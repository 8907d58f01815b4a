// `drimbox audit verify --config FILE`: walks the audit trail's hash chain in the box database.
import { loadConfig, ConfigError } from '../config/load.js';
import { openStore } from './database.js';
import { AuditLog } from './audit.js';

export async function auditVerifyCommand(args: string[]): Promise<number> {
  const i = args.indexOf('--config');
  const file = i >= 0 ? args[i + 1] : undefined;
  if (!file) { console.error('usage: drimbox audit verify --config FILE'); return 2; }
  let url: string;
  try {
    url = loadConfig(file).database.url;
  } catch (e) {
    if (e instanceof ConfigError) { console.error(`drimbox: ${e.message}`); return 2; }
    throw e;
  }
  // the box's own store (its migrations, whichever made the file), not a second migrator
  const store = await openStore(url);
  try {
    if (!store.sqlite) { console.error('drimbox: audit verify reads SQLite only for now (the audit log is not on the shared store yet)'); return 2; }
    const r = new AuditLog(store.sqlite).verify();
    if (r.ok) {
      console.log(`audit trail intact: ${r.rows} rows`);
      return 0;
    }
    console.error(`audit trail broken at row ${r.brokenAt}: ${r.reason} (${r.rows} rows before it are intact)`);
    return 1;
  } finally {
    await store.close();
  }
}
