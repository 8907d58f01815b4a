// Consumer state shared by several instances: a lease per cached series (who fetches or evicts it),
// reader rows (who reads it), viewer grants, the binding of a parked call to the confirmation page
// that may take it, and which instance runs an import job and when it was last alive.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('consumer_cache_leases')
    .addColumn('series_uid', 'text', (c) => c.primaryKey())
    .addColumn('instance', 'text', (c) => c.notNull())
    .addColumn('token', 'text', (c) => c.notNull())   // which fetch or eviction pass of that instance
    .addColumn('purpose', 'text', (c) => c.notNull()) // 'fetch' | 'evict'
    .addColumn('expires_at', 'bigint', (c) => c.notNull()) // epoch ms; renewed by its holder
    .execute();
  await db.schema.createTable('consumer_cache_readers')
    .addColumn('instance', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('kos_uid', 'text', (c) => c.notNull())
    .addColumn('series_uid', 'text', (c) => c.notNull())
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('consumer_cache_readers_pk', ['instance', 'source', 'kos_uid', 'series_uid'])
    .execute();
  await db.schema.createIndex('consumer_cache_readers_series').on('consumer_cache_readers').columns(['series_uid', 'expires_at']).execute();
  await db.schema.createTable('consumer_call_grants')
    .addColumn('call_hash', 'text', (c) => c.notNull())
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('granted_at', 'bigint', (c) => c.notNull()) // epoch ms the source last said yes
    .addColumn('series_json', 'text')                      // its QIDO series rows (absent: served from the cache)
    .addPrimaryKeyConstraint('consumer_call_grants_pk', ['call_hash', 'study_uid'])
    .execute();
  // one column per statement: SQLite's ALTER TABLE adds one at a time
  await db.schema.alterTable('consumer_pending_calls').addColumn('confirm_session_hash', 'text').execute();
  await db.schema.alterTable('consumer_pending_calls').addColumn('confirm_token_hash', 'text').execute();
  await db.schema.alterTable('consumer_import_jobs').addColumn('owner', 'text').execute();
  await db.schema.alterTable('consumer_import_jobs').addColumn('heartbeat_at', 'bigint').execute();
}
