// Frozen: the migrations of the SQLite-only store that preceded the Kysely migrator (issue 13).
// A box file made by them is brought to their last step, then adopted as 001-baseline (database.ts).
// New schema changes go to migrations/NNN-name.ts.
export interface Migration {
  id: string;
  sql: string;
}

export const legacyMigrations: Migration[] = [
  {
    id: '001-audit',
    sql: `
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        direction TEXT NOT NULL,          -- 'peer-in' (served to another box), 'peer-out', 'user', 'admin'
        actor_dn TEXT,                    -- client certificate subject DN
        actor_rpps TEXT,                  -- clinician RPPS id from the PSC token
        route TEXT NOT NULL,
        method TEXT NOT NULL,
        patient_id TEXT,                  -- INS, when known
        study_uid TEXT,
        series_uid TEXT,
        instance_uid TEXT,
        kos_uid TEXT,
        status INTEGER NOT NULL,
        outcome TEXT,                     -- short reason for refusals / failures
        bytes INTEGER NOT NULL DEFAULT 0,
        duration_ms REAL NOT NULL DEFAULT 0
      );
      CREATE INDEX audit_at ON audit(at);
      CREATE INDEX audit_study ON audit(study_uid);
    `,
  },
  {
    id: '040-sessions',
    sql: `
      -- Clinician sessions after PSC login. id_hash = sha256(cookie value): a leaked DB holds no usable cookie.
      CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        rpps TEXT NOT NULL,
        clinician_json TEXT NOT NULL,     -- {rpps, nationalId, sub, givenName, familyName, name, profession}
        access_token TEXT NOT NULL,       -- PSC access token, sent as Bearer to source boxes
        access_token_expires_at INTEGER,  -- epoch ms
        refresh_token TEXT,
        id_token TEXT,
        created_at INTEGER NOT NULL,      -- epoch ms
        last_seen_at INTEGER NOT NULL,    -- epoch ms, drives the idle expiry
        expires_at INTEGER NOT NULL       -- epoch ms, absolute expiry
      );
      CREATE INDEX sessions_expires ON sessions(expires_at);
      -- Authorization requests in flight (state, nonce, PKCE verifier), keyed by a cookie-held id.
      CREATE TABLE login_transactions (
        id_hash TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        nonce TEXT NOT NULL,
        code_verifier TEXT NOT NULL,
        return_to TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      );
    `,
  },
  {
    id: '020-folder-store',
    sql: `
      -- local Part 10 store (demo PACS, consumer cache): one row per instance, series, study;
      -- "store" names the folder so several stores can share one database
      CREATE TABLE folder_study (
        store TEXT NOT NULL,
        study_uid TEXT NOT NULL,
        patient_id TEXT NOT NULL DEFAULT '',
        patient_name TEXT NOT NULL DEFAULT '',
        patient_birth_date TEXT NOT NULL DEFAULT '',
        patient_sex TEXT NOT NULL DEFAULT '',
        study_date TEXT NOT NULL DEFAULT '',
        study_time TEXT NOT NULL DEFAULT '',
        accession TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        study_id TEXT NOT NULL DEFAULT '',
        referring TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (store, study_uid)
      );
      CREATE INDEX folder_study_patient ON folder_study(store, patient_id);
      CREATE INDEX folder_study_date ON folder_study(store, study_date);
      CREATE INDEX folder_study_accession ON folder_study(store, accession);
      CREATE TABLE folder_series (
        store TEXT NOT NULL,
        series_uid TEXT NOT NULL,
        study_uid TEXT NOT NULL,
        modality TEXT NOT NULL DEFAULT '',
        series_number INTEGER,
        description TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (store, series_uid)
      );
      CREATE INDEX folder_series_study ON folder_series(store, study_uid);
      CREATE TABLE folder_instance (
        store TEXT NOT NULL,
        sop_uid TEXT NOT NULL,
        series_uid TEXT NOT NULL,
        study_uid TEXT NOT NULL,
        sop_class TEXT NOT NULL,
        transfer_syntax TEXT NOT NULL,
        instance_number INTEGER,
        frames INTEGER NOT NULL DEFAULT 1,
        rows INTEGER,
        columns INTEGER,
        size INTEGER NOT NULL,
        path TEXT NOT NULL,              -- relative to the store folder
        pixel_offset INTEGER,            -- where Pixel Data starts: metadata reads only the bytes before
        added_at TEXT NOT NULL,
        PRIMARY KEY (store, sop_uid)
      );
      CREATE INDEX folder_instance_series ON folder_instance(store, study_uid, series_uid);
    `,
  },
  {
    id: '050-publication',
    sql: `
      -- Publication outbox: one job per RIS message that asks for work (publish a report version,
      -- withdraw it, refresh it after an IOCM rejection). idem_key makes a resent message a no-op.
      CREATE TABLE publication_job (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,               -- publish | withdraw | refresh
        idem_key TEXT NOT NULL UNIQUE,
        set_id TEXT NOT NULL,             -- report lineage (CDA setId): jobs of one set run in order
        document_id TEXT,
        version INTEGER,
        control_id TEXT,
        study_uids TEXT NOT NULL DEFAULT '',  -- space separated, for the report link and admin filters
        payload TEXT NOT NULL,            -- JSON: the parsed message (CDA in base64)
        state TEXT NOT NULL,              -- received | resolving | kos-built | submitted | done | failed
        failed_at_state TEXT,             -- where a failed job stopped (retry resumes there)
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL, -- epoch ms
        window_start INTEGER NOT NULL,    -- retries give up retryMaxMinutes after this
        study_waiting_since INTEGER,
        last_error TEXT,
        note TEXT,
        kos_id INTEGER,                   -- KOS this job built
        target_kos_id INTEGER,            -- KOS this job replaces or withdraws (fixed before sending)
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX publication_job_due ON publication_job(state, next_attempt_at);
      CREATE INDEX publication_job_set ON publication_job(set_id, id);
      -- Every KOS the box built; status current = published and still granting access.
      CREATE TABLE published_kos (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL,
        set_id TEXT NOT NULL,
        sop_instance_uid TEXT NOT NULL UNIQUE,
        patient_id TEXT NOT NULL,         -- INS
        part10 BLOB NOT NULL,
        refs TEXT NOT NULL,               -- JSON {study: {series: [sop instance uid]}}
        instance_count INTEGER NOT NULL,
        status TEXT NOT NULL,             -- built | current | replaced | withdrawn
        kos_entry_uuid TEXT,
        report_entry_uuid TEXT,
        created_at INTEGER NOT NULL,
        published_at INTEGER,
        ended_at INTEGER
      );
      CREATE INDEX published_kos_set ON published_kos(set_id, status);
      CREATE TABLE published_kos_study (
        kos_id INTEGER NOT NULL REFERENCES published_kos(id),
        study_uid TEXT NOT NULL,
        accession TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (kos_id, study_uid)
      );
      CREATE INDEX published_kos_study_uid ON published_kos_study(study_uid);
      -- Instances the PACS rejected (IOCM): never referenced or served again, although the PACS keeps them.
      CREATE TABLE rejected_instance (
        sop_instance_uid TEXT PRIMARY KEY,
        study_uid TEXT NOT NULL,
        series_uid TEXT NOT NULL,
        note_uid TEXT NOT NULL,
        reason TEXT NOT NULL,
        rejected_at INTEGER NOT NULL
      );
      CREATE INDEX rejected_instance_study ON rejected_instance(study_uid);
    `,
  },
  {
    id: '060-consumer',
    sql: `
      -- Viewer sessions of the consumer box: one per contextual call or report link, private to the
      -- clinician (RPPS) who made it. id_hash = sha256(the id in the viewer URL).
      CREATE TABLE consumer_calls (
        id_hash TEXT PRIMARY KEY,
        rpps TEXT NOT NULL,
        patient_json TEXT NOT NULL,       -- identity traits for display
        clinician_json TEXT NOT NULL,
        studies_json TEXT NOT NULL,       -- studies -> series -> instances, with source box and KOS
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX consumer_calls_expires ON consumer_calls(expires_at);
      CREATE TABLE consumer_call_reports (
        call_hash TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        media_type TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (call_hash, doc_id)
      );
      -- A contextual call received before the clinician logged in: replayed once after PSC login.
      CREATE TABLE consumer_pending_calls (
        id_hash TEXT PRIMARY KEY,
        form_json TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      );
      -- The study cache: one row per (source box, KOS, series). Files live in a folder store.
      CREATE TABLE consumer_cache_series (
        source TEXT NOT NULL,
        kos_uid TEXT NOT NULL,
        study_uid TEXT NOT NULL,
        series_uid TEXT NOT NULL,
        expected_json TEXT NOT NULL,      -- SOP instance UIDs the KOS references
        state TEXT NOT NULL,              -- 'partial' | 'complete'
        bytes INTEGER NOT NULL DEFAULT 0,
        fetched_at INTEGER,               -- epoch ms when it became complete (TTL runs from here)
        last_access INTEGER NOT NULL,     -- epoch ms, drives LRU eviction
        PRIMARY KEY (source, kos_uid, series_uid)
      );
      CREATE INDEX consumer_cache_lru ON consumer_cache_series(last_access);
      CREATE INDEX consumer_cache_series_uid ON consumer_cache_series(series_uid);
      -- Pins keep a KOS's series in the cache whatever the budget (screening batches).
      CREATE TABLE consumer_cache_pins (
        owner TEXT NOT NULL,
        source TEXT NOT NULL,
        kos_uid TEXT NOT NULL,
        PRIMARY KEY (owner, source, kos_uid)
      );
      CREATE TABLE consumer_import_jobs (
        id TEXT PRIMARY KEY,
        call_hash TEXT NOT NULL,
        rpps TEXT NOT NULL,
        study_uid TEXT NOT NULL,
        series_uid TEXT,
        state TEXT NOT NULL,              -- 'running' | 'completed' | 'failed'
        total INTEGER NOT NULL,
        stored INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        results_json TEXT NOT NULL DEFAULT '[]',
        error TEXT,
        created_at INTEGER NOT NULL
      );
    `,
  },
  {
    // publication: the report's uniqueId next to its entryUUID, so entryUUIDs can be learnt after the
    // DMP acknowledged (ITI-18 by uniqueId) instead of before the job is done
    id: '051-publication-report-uid',
    sql: `ALTER TABLE published_kos ADD COLUMN report_unique_id TEXT;`,
  },
  {
    // audit: rows chained by hash (tamper evidence), the anchor retention leaves behind, and the
    // indexes the admin search uses (patient INS, clinician RPPS)
    id: '060-audit-chain',
    sql: `
      ALTER TABLE audit ADD COLUMN hash TEXT;
      CREATE TABLE audit_anchor (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        through_id INTEGER NOT NULL,      -- last row deleted by retention
        hash TEXT NOT NULL                -- its hash: the chain resumes from it
      );
      -- rows written before the chain: hashed once at the next start, then this marker goes
      CREATE TABLE audit_legacy (through_id INTEGER NOT NULL);
      INSERT INTO audit_legacy SELECT max(id) FROM audit HAVING max(id) IS NOT NULL;
      CREATE INDEX audit_patient ON audit(patient_id);
      CREATE INDEX audit_rpps ON audit(actor_rpps);
    `,
  },
];
