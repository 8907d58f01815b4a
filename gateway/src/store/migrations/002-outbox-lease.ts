// Publication outbox shared by several instances: the instance working on a job holds a lease on it
// (renewed while it works); a lease that runs out (the instance died) lets another one take the job over.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('publication_job').addColumn('claimed_by', 'text').execute();
  await db.schema.alterTable('publication_job').addColumn('lease_until', 'bigint').execute();
}
