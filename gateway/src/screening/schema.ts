// The screening tables as Kysely sees them (migration 040-screening).
export interface ScreeningBatchRow {
  id: string;
  name: string;
  state: string;
  pause_reason: string | null;
  created_at: string;
  created_by_rpps: string;
  created_by_name: string;
  due_date: string | null;
  priors_wanted: number;
  tokens_sealed: string | null;
  closed_at: string | null;
}

export interface ScreeningCaseRow {
  id: string;
  batch_id: string;
  position: number;
  state: string;
  error: string | null;
  retryable: number;
  attempts: number;
  next_attempt_at: string | null;
  row_json: string;
  source: string | null;
  resolved_json: string | null;
  instances_done: number;
  instances_total: number;
  bytes_done: number;
  verdict_json: string | null;
  verdict_request_id: string | null;
  deferral_json: string | null;
  updated_at: string;
}

export interface ScreeningSessionRow {
  case_id: string;
  rpps: string;
  session_sealed: string;
  expires_at: string;
}

export interface ScreeningSchema {
  screening_batches: ScreeningBatchRow;
  screening_cases: ScreeningCaseRow;
  screening_sessions: ScreeningSessionRow;
}
