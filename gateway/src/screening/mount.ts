// Wires screening batches into the consumer role: the tables, the repository, the prefetch engine
// (started with the box, stopped before the cache closes) and the API on the user listener.
import type { Kysely } from 'kysely';
import type { RoleContext } from '../box.js';
import type { ConsumerServices } from '../consumer/role.js';
import { loadTokenKey, TokenSealer } from '../trust/token-seal.js';
import { ScreeningRepository } from './repository.js';
import { PrefetchEngine } from './prefetch.js';
import { screeningRoutes } from './routes.js';
import type { ScreeningSchema } from './schema.js';
import { BatchTokens } from './tokens.js';

export async function mountScreening(ctx: RoleContext, consumer: ConsumerServices, o: { isHostAllowed: (url: string) => boolean; refreshAllowList?: () => Promise<void> }): Promise<PrefetchEngine | undefined> {
  const { config } = ctx;
  if (!config.psc || !ctx.user.pscSessions) return undefined; // no PSC login: no identity to prefetch under
  const db = ctx.store.db as unknown as Kysely<ScreeningSchema>; // its tables: migration 040-screening
  const repo = new ScreeningRepository(db);
  const sealer = new TokenSealer(loadTokenKey(config.psc.tokenKey, config.dataDir));
  const tokens = new BatchTokens(sealer, ctx.user.pscRefresh, async (id, sealed) => { await repo.updateBatch(id, { tokens_sealed: sealed }); });
  const engine = new PrefetchEngine({
    repo, cache: consumer.cache, dmp: ctx.services.dmp, tokens, audit: ctx.audit, isHostAllowed: o.isHostAllowed, refreshAllowList: o.refreshAllowList,
    settings: config.screening, logger: ctx.logger.child({ part: 'screening' }),
  });
  await ctx.user.register(async (app) => screeningRoutes(app, {
    repo, engine, tokens, calls: consumer.calls, cache: consumer.cache, sealer, audit: ctx.audit,
    cacheMaxBytes: config.cache.maxBytes, examBytesEstimate: config.screening.examBytesEstimate, boxOrigin: config.user.publicUrl,
  }));
  await engine.start();
  return engine;
}
