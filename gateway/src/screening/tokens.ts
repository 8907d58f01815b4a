// The PSC identity a batch's prefetch acts under: the creator's tokens at creation (or at the resume
// after a reconnection), sealed in the batch row, renewed with the refresh token before they expire.
// When renewal fails the batch waits for its creator: 'psc-reconnect', "reconnexion PSC requise".
import type { Clinician } from '../trust/psc-claims.js';
import type { ClinicianSession, SessionTokens } from '../trust/sessions.js';
import type { TokenSealer } from '../trust/token-seal.js';
import type { ScreeningBatchRow } from './schema.js';

export const PSC_RECONNECT = 'reconnexion PSC requise';
/** renewed this long before expiry: a series fetch started now still carries a valid token */
const RENEW_BEFORE_MS = 60_000;

export class PscReconnectError extends Error {
  constructor() { super(PSC_RECONNECT); this.name = 'PscReconnectError'; }
}

/** renews tokens (psc-login's refresh grant); undefined when PSC refuses */
export type Renew = (session: ClinicianSession) => Promise<ClinicianSession | undefined>;

export class BatchTokens {
  /** renewals in flight, per batch: one refresh grant however many cases ask */
  private readonly renewing = new Map<string, Promise<SessionTokens>>();

  constructor(private readonly sealer: TokenSealer, private readonly renew: Renew | undefined,
    private readonly save: (batchId: string, sealed: string) => Promise<void>) {}

  seal(batchId: string, t: SessionTokens): string {
    return this.sealer.seal(JSON.stringify(t), `screening-batch|${batchId}`);
  }

  private open(b: ScreeningBatchRow): SessionTokens {
    const raw = b.tokens_sealed ? this.sealer.open(b.tokens_sealed, `screening-batch|${b.id}`) : undefined;
    if (!raw) throw new PscReconnectError(); // sealed with another key: the creator must resume the batch
    return JSON.parse(raw) as SessionTokens;
  }

  /** A valid access token for the batch's prefetch (renewed when near expiry, or when `force`). */
  async access(b: ScreeningBatchRow, force = false): Promise<string> {
    const t = this.open(b);
    const fresh = t.accessTokenExpiresAt === undefined || t.accessTokenExpiresAt - Date.now() > RENEW_BEFORE_MS;
    if (fresh && !force) return t.accessToken;
    let p = this.renewing.get(b.id);
    if (!p) {
      p = this.renewNow(b, t).finally(() => this.renewing.delete(b.id));
      this.renewing.set(b.id, p);
    }
    return (await p).accessToken;
  }

  private async renewNow(b: ScreeningBatchRow, t: SessionTokens): Promise<SessionTokens> {
    if (!t.refreshToken || !this.renew) throw new PscReconnectError();
    const clinician: Clinician = { rpps: b.created_by_rpps, nationalId: `8${b.created_by_rpps}`, sub: '', name: b.created_by_name };
    const now = Date.now();
    // psc-login's renewal takes a session; this one is the batch's own (no session row has its id)
    const renewed = await this.renew({ id: `screening-batch:${b.id}`, clinician, ...t, createdAt: now, lastSeenAt: now, expiresAt: now + 3600_000 });
    if (!renewed) throw new PscReconnectError();
    const next: SessionTokens = {
      accessToken: renewed.accessToken,
      ...(renewed.accessTokenExpiresAt !== undefined ? { accessTokenExpiresAt: renewed.accessTokenExpiresAt } : {}),
      ...(renewed.refreshToken ? { refreshToken: renewed.refreshToken } : {}),
    };
    const sealed = this.seal(b.id, next);
    b.tokens_sealed = sealed;
    await this.save(b.id, sealed);
    return next;
  }
}
