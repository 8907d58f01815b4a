// `drimbox audit verify --config FILE`: walks the audit trail's hash chain in the box database.
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../config/load.js';
import { openDb } from './db.js';
import { AuditLog } from './audit.js';

export function auditVerifyCommand(args: string[]): number {
  const i = args.indexOf('--config');
  const file = i >= 0 ? args[i + 1] : undefined;
  if (!file) { console.error('usage: drimbox audit verify --config FILE'); return 2; }
  let dataDir: string;
  try {
    dataDir = loadConfig(file).dataDir;
  } catch (e) {
    if (e instanceof ConfigError) { console.error(`drimbox: ${e.message}`); return 2; }
    throw e;
  }
  const db = openDb(join(dataDir, 'drimbox.db'));
  try {
    const r = new AuditLog(db).verify();
    if (r.ok) {
      console.log(`audit trail intact: ${r.rows} rows`);
      return 0;
    }
    console.error(`audit trail broken at row ${r.brokenAt}: ${r.reason} (${r.rows} rows before it are intact)`);
    return 1;
  } finally {
    db.close();
  }
}
