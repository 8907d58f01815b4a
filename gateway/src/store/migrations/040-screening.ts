// Screening batches (second reading): batches, their cases, and each reader's viewer session of a case.
// Schema builder only (same in SQLite and PostgreSQL): timestamps ISO-8601 text, JSON as text.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('screening_batches')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('pause_reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by_rpps', 'text', (c) => c.notNull())
    .addColumn('created_by_name', 'text', (c) => c.notNull())
    .addColumn('due_date', 'text')
    .addColumn('priors_wanted', 'integer', (c) => c.notNull())
    // the creator's PSC tokens, sealed (AES-256-GCM, psc.tokenKey): the prefetch acts under them
    .addColumn('tokens_sealed', 'text')
    .addColumn('closed_at', 'text')
    .execute();
  await db.schema.createTable('screening_cases')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('batch_id', 'text', (c) => c.notNull().references('screening_batches.id').onDelete('cascade'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    /** 1 when the error may go away by itself (a source box down): the case is tried again later */
    .addColumn('retryable', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'text')
    .addColumn('row_json', 'text', (c) => c.notNull())
    .addColumn('source', 'text')
    /** once the DMP was searched: { studies: SessionStudy[] (current first, then priors), reports (data base64), patient } */
    .addColumn('resolved_json', 'text')
    .addColumn('instances_done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('instances_total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('verdict_json', 'text')
    .addColumn('verdict_request_id', 'text')
    .addColumn('deferral_json', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('screening_cases_batch').on('screening_cases').columns(['batch_id', 'position']).unique().execute();
  await db.schema.createIndex('screening_cases_state').on('screening_cases').columns(['state']).execute();
  await db.schema.createTable('screening_sessions')
    .addColumn('case_id', 'text', (c) => c.notNull().references('screening_cases.id').onDelete('cascade'))
    .addColumn('rpps', 'text', (c) => c.notNull())
    /** the viewer session id (a bearer secret), sealed like the tokens */
    .addColumn('session_sealed', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('screening_sessions_pk', ['case_id', 'rpps'])
    .execute();
}
