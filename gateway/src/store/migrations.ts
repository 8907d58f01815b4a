// Ordered schema migrations. Append only: never edit a migration that has shipped.
export interface Migration {
  id: string;
  sql: string;
}

export const migrations: Migration[] = [
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
];
