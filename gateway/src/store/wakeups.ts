// Wake-ups between instances sharing PostgreSQL (LISTEN/NOTIFY): work queued by one instance is taken
// at once by another that is idle, instead of at its next poll. The poll stays as the safety net
// (a lost connection, a missed notification). SQLite serves one instance: its own kicks suffice.
import type pg from 'pg';

export interface Wakeups {
  /** tells every instance listening on `channel` that work is waiting */
  notify(channel: string): Promise<void>;
  /** calls `fn` on each notification of `channel`; returns the unsubscribe */
  listen(channel: string, fn: () => void): Promise<() => Promise<void>>;
}

export const localWakeups: Wakeups = {
  notify: async () => undefined,
  listen: async () => async () => undefined,
};

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;
const RETRY_MS = 1000;

/** One dedicated connection per listened channel, reopened after a loss. */
export function postgresWakeups(pool: pg.Pool, onError: (e: unknown) => void = () => undefined): Wakeups {
  return {
    async notify(channel) {
      if (!CHANNEL.test(channel)) throw new Error(`bad channel name ${channel}`);
      await pool.query('SELECT pg_notify($1, $2)', [channel, '']);
    },
    async listen(channel, fn) {
      if (!CHANNEL.test(channel)) throw new Error(`bad channel name ${channel}`);
      let client: pg.PoolClient | undefined;
      let closed = false;
      let retry: NodeJS.Timeout | undefined;
      const open = async (): Promise<void> => {
        try {
          const c = await pool.connect();
          c.on('notification', (m) => { if (m.channel === channel) fn(); });
          c.on('error', (e) => {
            onError(e);
            c.release(true);
            if (client === c) client = undefined;
            if (!closed) retry = setTimeout(open, RETRY_MS).unref();
          });
          await c.query(`LISTEN ${channel}`);
          if (closed) { c.release(true); return; }
          client = c;
          fn(); // what was notified while not listening is looked at now
        } catch (e) {
          onError(e);
          if (!closed) retry = setTimeout(open, RETRY_MS).unref();
        }
      };
      await open();
      return async () => {
        closed = true;
        clearTimeout(retry);
        const c = client;
        client = undefined;
        if (c) {
          await c.query(`UNLISTEN ${channel}`).catch(() => undefined);
          c.release(true);
        }
      };
    },
  };
}
