// The simulator's own SQLite file (not the gateway's migrations): submission sets, document entries
// with their content, associations.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';

export type SimDb = Database.Database;

export function openSimDb(dataDir: string): SimDb {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'dmp-simulator.sqlite'));
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS submission_sets (
      entry_uuid TEXT PRIMARY KEY, unique_id TEXT NOT NULL UNIQUE, patient_id TEXT NOT NULL,
      source_id TEXT NOT NULL, submitted_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS documents (
      entry_uuid TEXT PRIMARY KEY, unique_id TEXT NOT NULL UNIQUE, patient_id TEXT NOT NULL,
      status TEXT NOT NULL, mime_type TEXT NOT NULL, type_code TEXT, class_code TEXT,
      event_codes TEXT NOT NULL, confidentiality TEXT NOT NULL, creation_time TEXT, service_start TEXT,
      submission_set TEXT NOT NULL, author_person TEXT, metadata_xml TEXT NOT NULL, content BLOB NOT NULL,
      size INTEGER NOT NULL, hash TEXT NOT NULL, submitted_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS documents_patient ON documents(patient_id, status);
    CREATE TABLE IF NOT EXISTS associations (
      entry_uuid TEXT PRIMARY KEY, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
      submission_set TEXT NOT NULL);
  `);
  return db;
}

export interface DocumentRow {
  entry_uuid: string;
  unique_id: string;
  patient_id: string;
  status: string;
  mime_type: string;
  type_code: string | null;
  class_code: string | null;
  event_codes: string;
  confidentiality: string;
  creation_time: string | null;
  service_start: string | null;
  submission_set: string;
  author_person: string | null;
  metadata_xml: string;
  content: Buffer;
  size: number;
  hash: string;
  submitted_at: string;
}
