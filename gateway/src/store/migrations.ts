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
];
