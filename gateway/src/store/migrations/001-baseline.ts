// The whole schema as the SQLite-only store left it (legacy-migrations.ts, 001-audit … 060-audit-chain),
// for both dialects. Epoch-ms columns are bigint (PostgreSQL's integer is 32-bit); ISO-8601
// timestamps are text; JSON is text; binary is blob/bytea.
import { sql, type ColumnDefinitionBuilder, type Kysely } from 'kysely';
import type { Dialect } from '../database.js';

export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  // a file made by the old migrator (brought to its last step when opened): already this schema
  if ((await db.introspection.getTables()).some((t) => t.name === 'schema_migrations')) {
    await db.schema.dropTable('schema_migrations').execute();
    return;
  }
  const pg = dialect === 'postgres';
  const blob = pg ? 'bytea' : 'blob';
  const s = db.schema;
  /** a row id the database assigns */
  const serialId = (t: ReturnType<typeof s.createTable>) =>
    pg ? t.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
      : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

  // ---- audit trail (hash-chained: ids are assigned by the writer, in order) ----
  await s.createTable('audit')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('direction', 'text', (c) => c.notNull()) // peer-in | peer-out | user | admin
    .addColumn('actor_dn', 'text') // client certificate subject DN
    .addColumn('actor_rpps', 'text') // clinician RPPS id from the PSC token
    .addColumn('route', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('patient_id', 'text') // INS, when known
    .addColumn('study_uid', 'text')
    .addColumn('series_uid', 'text')
    .addColumn('instance_uid', 'text')
    .addColumn('kos_uid', 'text')
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('outcome', 'text') // short reason for refusals / failures
    .addColumn('bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('duration_ms', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('hash', 'text')
    .execute();
  await s.createIndex('audit_at').on('audit').column('at').execute();
  await s.createIndex('audit_study').on('audit').column('study_uid').execute();
  await s.createIndex('audit_patient').on('audit').column('patient_id').execute();
  await s.createIndex('audit_rpps').on('audit').column('actor_rpps').execute();
  await s.createTable('audit_anchor')
    .addColumn('one', 'integer', (c) => c.primaryKey().check(sql`one = 1`))
    .addColumn('through_id', 'bigint', (c) => c.notNull()) // last row deleted by retention
    .addColumn('hash', 'text', (c) => c.notNull()) // its hash: the chain resumes from it
    .execute();
  // rows written before the chain existed (only ever filled by the legacy migration 060)
  await s.createTable('audit_legacy').addColumn('through_id', 'bigint', (c) => c.notNull()).execute();

  // ---- clinician sessions after PSC login; id_hash = sha256(cookie value) ----
  await s.createTable('sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('rpps', 'text', (c) => c.notNull())
    .addColumn('clinician_json', 'text', (c) => c.notNull())
    .addColumn('access_token', 'text', (c) => c.notNull()) // sealed
    .addColumn('access_token_expires_at', 'bigint')
    .addColumn('refresh_token', 'text')
    .addColumn('id_token', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await s.createIndex('sessions_expires').on('sessions').column('expires_at').execute();
  await s.createTable('login_transactions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('code_verifier', 'text', (c) => c.notNull())
    .addColumn('return_to', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();

  // ---- folder store index (demo PACS, consumer cache); "store" names the folder ----
  const blank = (c: ColumnDefinitionBuilder) => c.notNull().defaultTo('');
  await s.createTable('folder_study')
    .addColumn('store', 'text', (c) => c.notNull())
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('patient_id', 'text', blank)
    .addColumn('patient_name', 'text', blank)
    .addColumn('patient_birth_date', 'text', blank)
    .addColumn('patient_sex', 'text', blank)
    .addColumn('study_date', 'text', blank)
    .addColumn('study_time', 'text', blank)
    .addColumn('accession', 'text', blank)
    .addColumn('description', 'text', blank)
    .addColumn('study_id', 'text', blank)
    .addColumn('referring', 'text', blank)
    .addPrimaryKeyConstraint('folder_study_pk', ['store', 'study_uid'])
    .execute();
  await s.createIndex('folder_study_patient').on('folder_study').columns(['store', 'patient_id']).execute();
  await s.createIndex('folder_study_date').on('folder_study').columns(['store', 'study_date']).execute();
  await s.createIndex('folder_study_accession').on('folder_study').columns(['store', 'accession']).execute();
  await s.createTable('folder_series')
    .addColumn('store', 'text', (c) => c.notNull())
    .addColumn('series_uid', 'text', (c) => c.notNull())
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('modality', 'text', blank)
    .addColumn('series_number', 'integer')
    .addColumn('description', 'text', blank)
    .addPrimaryKeyConstraint('folder_series_pk', ['store', 'series_uid'])
    .execute();
  await s.createIndex('folder_series_study').on('folder_series').columns(['store', 'study_uid']).execute();
  await s.createTable('folder_instance')
    .addColumn('store', 'text', (c) => c.notNull())
    .addColumn('sop_uid', 'text', (c) => c.notNull())
    .addColumn('series_uid', 'text', (c) => c.notNull())
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('sop_class', 'text', (c) => c.notNull())
    .addColumn('transfer_syntax', 'text', (c) => c.notNull())
    .addColumn('instance_number', 'integer')
    .addColumn('frames', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('rows', 'integer')
    .addColumn('columns', 'integer')
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull()) // relative to the store folder
    .addColumn('pixel_offset', 'bigint') // where Pixel Data starts
    .addColumn('added_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('folder_instance_pk', ['store', 'sop_uid'])
    .execute();
  await s.createIndex('folder_instance_series').on('folder_instance').columns(['store', 'study_uid', 'series_uid']).execute();

  // ---- publication outbox: one job per RIS message asking for work; idem_key makes a resend a no-op ----
  await serialId(s.createTable('publication_job'))
    .addColumn('kind', 'text', (c) => c.notNull()) // publish | withdraw | refresh
    .addColumn('idem_key', 'text', (c) => c.notNull().unique())
    .addColumn('set_id', 'text', (c) => c.notNull()) // report lineage: jobs of one set run in order
    .addColumn('document_id', 'text')
    .addColumn('version', 'integer')
    .addColumn('control_id', 'text')
    .addColumn('study_uids', 'text', (c) => c.notNull().defaultTo('')) // space separated
    .addColumn('payload', 'text', (c) => c.notNull()) // JSON: the parsed message (CDA in base64)
    .addColumn('state', 'text', (c) => c.notNull()) // received | resolving | kos-built | submitted | done | failed
    .addColumn('failed_at_state', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('study_waiting_since', 'bigint')
    .addColumn('last_error', 'text')
    .addColumn('note', 'text')
    .addColumn('kos_id', 'bigint') // KOS this job built
    .addColumn('target_kos_id', 'bigint') // KOS this job replaces or withdraws
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await s.createIndex('publication_job_due').on('publication_job').columns(['state', 'next_attempt_at']).execute();
  await s.createIndex('publication_job_set').on('publication_job').columns(['set_id', 'id']).execute();
  await serialId(s.createTable('published_kos'))
    .addColumn('job_id', 'bigint', (c) => c.notNull())
    .addColumn('set_id', 'text', (c) => c.notNull())
    .addColumn('sop_instance_uid', 'text', (c) => c.notNull().unique())
    .addColumn('patient_id', 'text', (c) => c.notNull()) // INS
    .addColumn('part10', blob, (c) => c.notNull())
    .addColumn('refs', 'text', (c) => c.notNull()) // JSON {study: {series: [sop instance uid]}}
    .addColumn('instance_count', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull()) // built | current | replaced | withdrawn
    .addColumn('kos_entry_uuid', 'text')
    .addColumn('report_entry_uuid', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('published_at', 'bigint')
    .addColumn('ended_at', 'bigint')
    .addColumn('report_unique_id', 'text')
    .execute();
  await s.createIndex('published_kos_set').on('published_kos').columns(['set_id', 'status']).execute();
  await s.createTable('published_kos_study')
    .addColumn('kos_id', 'bigint', (c) => c.notNull().references('published_kos.id'))
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('accession', 'text', (c) => c.notNull().defaultTo(''))
    .addPrimaryKeyConstraint('published_kos_study_pk', ['kos_id', 'study_uid'])
    .execute();
  await s.createIndex('published_kos_study_uid').on('published_kos_study').column('study_uid').execute();
  // instances the PACS rejected (IOCM): never referenced or served again
  await s.createTable('rejected_instance')
    .addColumn('sop_instance_uid', 'text', (c) => c.primaryKey())
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('series_uid', 'text', (c) => c.notNull())
    .addColumn('note_uid', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('rejected_at', 'bigint', (c) => c.notNull())
    .execute();
  await s.createIndex('rejected_instance_study').on('rejected_instance').column('study_uid').execute();

  // ---- consumer: viewer sessions, pending calls, study cache, pins, import jobs ----
  await s.createTable('consumer_calls')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('rpps', 'text', (c) => c.notNull())
    .addColumn('patient_json', 'text', (c) => c.notNull())
    .addColumn('clinician_json', 'text', (c) => c.notNull())
    .addColumn('studies_json', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await s.createIndex('consumer_calls_expires').on('consumer_calls').column('expires_at').execute();
  await s.createTable('consumer_call_reports')
    .addColumn('call_hash', 'text', (c) => c.notNull())
    .addColumn('doc_id', 'text', (c) => c.notNull())
    .addColumn('media_type', 'text', (c) => c.notNull())
    .addColumn('data', blob, (c) => c.notNull())
    .addPrimaryKeyConstraint('consumer_call_reports_pk', ['call_hash', 'doc_id'])
    .execute();
  await s.createTable('consumer_pending_calls')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('form_json', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await s.createTable('consumer_cache_series')
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('kos_uid', 'text', (c) => c.notNull())
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('series_uid', 'text', (c) => c.notNull())
    .addColumn('expected_json', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull()) // partial | complete
    .addColumn('bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('fetched_at', 'bigint')
    .addColumn('last_access', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('consumer_cache_series_pk', ['source', 'kos_uid', 'series_uid'])
    .execute();
  await s.createIndex('consumer_cache_lru').on('consumer_cache_series').column('last_access').execute();
  await s.createIndex('consumer_cache_series_uid').on('consumer_cache_series').column('series_uid').execute();
  await s.createTable('consumer_cache_pins')
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('kos_uid', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('consumer_cache_pins_pk', ['owner', 'source', 'kos_uid'])
    .execute();
  await s.createTable('consumer_import_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('call_hash', 'text', (c) => c.notNull())
    .addColumn('rpps', 'text', (c) => c.notNull())
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('series_uid', 'text')
    .addColumn('state', 'text', (c) => c.notNull()) // running | completed | failed
    .addColumn('total', 'integer', (c) => c.notNull())
    .addColumn('stored', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('results_json', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}
