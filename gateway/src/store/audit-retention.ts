// Audit retention: rows older than the configured days are deleted at start and then daily.
import type { AuditLog } from './audit.js';

const DAY = 86_400_000;

/** Starts trimming `audit` to `days`; returns the stop function. */
export function keepAudit(audit: AuditLog, days: number, logger: { info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void }): () => void {
  const trim = () => {
    audit.trimOlderThan(days).then(
      (deleted) => { if (deleted) logger.info({ deleted, retentionDays: days }, 'audit rows past retention deleted'); },
      (err) => logger.warn({ err }, 'audit retention failed'),
    );
  };
  trim();
  const timer = setInterval(trim, DAY);
  timer.unref();
  return () => clearInterval(timer);
}
