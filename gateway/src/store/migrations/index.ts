// The migrations, in order (a static provider: no directory scan, works from a bundle). Append only:
// never edit a migration that has shipped. Numbering by area: 001-019 core (outbox, audit, sessions),
// 020-039 consumer, 040-059 screening, 060-079 multi-instance.
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import type { Dialect } from '../database.js';
import * as baseline from './001-baseline.js';
import * as outboxLease from './002-outbox-lease.js';
import * as consumerShared from './020-consumer-shared-state.js';
import * as screening from './040-screening.js';

export type DialectMigration = { up(db: Kysely<any>, dialect: Dialect): Promise<void> };

const migrations: Record<string, DialectMigration> = {
  '001-baseline': baseline,
  '002-outbox-lease': outboxLease,
  '020-consumer-shared-state': consumerShared,
  '040-screening': screening,
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
