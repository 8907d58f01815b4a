// The screening API's documents (SCREENING-API.md): the gateway's own types (types only: erased from the bundle).
export type {
  Batch, BatchState, BreastFinding, Case, CaseState, DeferReason, Progress, Sign, Verdict, VerdictInput, View,
} from '../../../gateway/src/screening/types.js';
import type { Batch, Case } from '../../../gateway/src/screening/types.js';

export type BatchWithCases = Batch & { cases: Case[] };
/** GET /auth/me: the PSC identity of the reader */
export interface Reader { rpps: string; name: string }
