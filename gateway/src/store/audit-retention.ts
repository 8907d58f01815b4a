// Audit retention: rows older than the configured days are deleted at start and then daily.
import type { AuditLog } from './audit.js';

const DAY = 86_400_000;

/** Starts trimming `audit` to `days`; returns the stop function. */
export function keepAudit(audit: AuditLog, days: number, logger: { info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void }): () => void {
  const trim = () => {
    try {
      const deleted = audit.trimOlderThan(days);
      if (deleted) logger.info({ deleted, retentionDays: days }, 'audit rows past retention deleted');
    } catch (err) {
      logger.warn({ err }, 'audit retention failed');
    }
  };
  trim();
  const timer = setInterval(trim, DAY);
  timer.unref();
  return () => clearInterval(timer);
}
