// The database schema as Kysely sees it: one interface per table (columns as the driver returns
// them: epoch ms and counts as number, JSON as string, binary as Buffer). Generated<> marks columns
// the database fills (row ids, defaults). Each area keeps its tables in its own block.
import type { Generated } from 'kysely';

// ---- core: audit, PSC sessions, publication outbox (store-core) ----

export interface AuditTable {
  id: number;
  at: string; // ISO-8601
  direction: string;
  actor_dn: string | null;
  actor_rpps: string | null;
  route: string;
  method: string;
  patient_id: string | null;
  study_uid: string | null;
  series_uid: string | null;
  instance_uid: string | null;
  kos_uid: string | null;
  status: number;
  outcome: string | null;
  bytes: Generated<number>;
  duration_ms: Generated<number>;
  hash: string | null;
}

export interface AuditAnchorTable { one: number; through_id: number; hash: string }
export interface AuditLegacyTable { through_id: number }

export interface SessionsTable {
  id_hash: string;
  rpps: string;
  clinician_json: string;
  access_token: string;
  access_token_expires_at: number | null;
  refresh_token: string | null;
  id_token: string | null;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

export interface LoginTransactionsTable {
  id_hash: string;
  state: string;
  nonce: string;
  code_verifier: string;
  return_to: string;
  expires_at: number;
}

export interface PublicationJobTable {
  id: Generated<number>;
  kind: string;
  idem_key: string;
  set_id: string;
  document_id: string | null;
  version: number | null;
  control_id: string | null;
  study_uids: Generated<string>;
  payload: string;
  state: string;
  failed_at_state: string | null;
  attempts: Generated<number>;
  next_attempt_at: number;
  window_start: number;
  study_waiting_since: number | null;
  last_error: string | null;
  note: string | null;
  kos_id: number | null;
  target_kos_id: number | null;
  created_at: number;
  updated_at: number;
}

export interface PublishedKosTable {
  id: Generated<number>;
  job_id: number;
  set_id: string;
  sop_instance_uid: string;
  patient_id: string;
  part10: Buffer;
  refs: string;
  instance_count: number;
  status: string;
  kos_entry_uuid: string | null;
  report_entry_uuid: string | null;
  created_at: number;
  published_at: number | null;
  ended_at: number | null;
  report_unique_id: string | null;
}

export interface PublishedKosStudyTable { kos_id: number; study_uid: string; accession: Generated<string> }

export interface RejectedInstanceTable {
  sop_instance_uid: string;
  study_uid: string;
  series_uid: string;
  note_uid: string;
  reason: string;
  rejected_at: number;
}

// ---- folder store index (pacs/folder.ts) ----

export interface FolderStudyTable {
  store: string;
  study_uid: string;
  patient_id: Generated<string>;
  patient_name: Generated<string>;
  patient_birth_date: Generated<string>;
  patient_sex: Generated<string>;
  study_date: Generated<string>;
  study_time: Generated<string>;
  accession: Generated<string>;
  description: Generated<string>;
  study_id: Generated<string>;
  referring: Generated<string>;
}

export interface FolderSeriesTable {
  store: string;
  series_uid: string;
  study_uid: string;
  modality: Generated<string>;
  series_number: number | null;
  description: Generated<string>;
}

export interface FolderInstanceTable {
  store: string;
  sop_uid: string;
  series_uid: string;
  study_uid: string;
  sop_class: string;
  transfer_syntax: string;
  instance_number: number | null;
  frames: Generated<number>;
  rows: number | null;
  columns: number | null;
  size: number;
  path: string;
  pixel_offset: number | null;
  added_at: string;
}

// ---- consumer: viewer sessions, study cache, import jobs ----

export interface ConsumerCallsTable {
  id_hash: string;
  rpps: string;
  patient_json: string;
  clinician_json: string;
  studies_json: string;
  created_at: number;
  expires_at: number;
}

export interface ConsumerCallReportsTable { call_hash: string; doc_id: string; media_type: string; data: Buffer }
export interface ConsumerPendingCallsTable { id_hash: string; form_json: string; expires_at: number }

export interface ConsumerCacheSeriesTable {
  source: string;
  kos_uid: string;
  study_uid: string;
  series_uid: string;
  expected_json: string;
  state: string;
  bytes: Generated<number>;
  fetched_at: number | null;
  last_access: number;
}

export interface ConsumerCachePinsTable { owner: string; source: string; kos_uid: string }

export interface ConsumerImportJobsTable {
  id: string;
  call_hash: string;
  rpps: string;
  study_uid: string;
  series_uid: string | null;
  state: string;
  total: number;
  stored: Generated<number>;
  failed: Generated<number>;
  results_json: Generated<string>;
  error: string | null;
  created_at: number;
}

export interface Schema {
  audit: AuditTable;
  audit_anchor: AuditAnchorTable;
  audit_legacy: AuditLegacyTable;
  sessions: SessionsTable;
  login_transactions: LoginTransactionsTable;
  publication_job: PublicationJobTable;
  published_kos: PublishedKosTable;
  published_kos_study: PublishedKosStudyTable;
  rejected_instance: RejectedInstanceTable;
  folder_study: FolderStudyTable;
  folder_series: FolderSeriesTable;
  folder_instance: FolderInstanceTable;
  consumer_calls: ConsumerCallsTable;
  consumer_call_reports: ConsumerCallReportsTable;
  consumer_pending_calls: ConsumerPendingCallsTable;
  consumer_cache_series: ConsumerCacheSeriesTable;
  consumer_cache_pins: ConsumerCachePinsTable;
  consumer_import_jobs: ConsumerImportJobsTable;
}
