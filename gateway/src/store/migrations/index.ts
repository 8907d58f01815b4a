// The migrations, in order (a static provider: no directory scan, works from a bundle). Append only:
// never edit a migration that has shipped. Numbering by area: 001-019 core (outbox, audit, sessions),
// 020-039 consumer, 040-059 screening, 060-079 multi-instance.
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import type { Dialect } from '../database.js';
import * as baseline from './001-baseline.js';

export type DialectMigration = { up(db: Kysely<any>, dialect: Dialect): Promise<void> };

const migrations: Record<string, DialectMigration> = {
  '001-baseline': baseline,
};

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, m] of Object.entries(migrations)) out[name] = { up: (db) => m.up(db, dialect) };
      return out;
    },
  };
}
