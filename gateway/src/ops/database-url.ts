// What `database.url` (sqlite:PATH or postgres://...; the config loader defaults it to the SQLite
// file in dataDir) names, for the commands that work on the database from outside the box.

export type DatabaseTarget = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

export function databaseTarget(url: string): DatabaseTarget {
  if (url.startsWith('sqlite:')) return { dialect: 'sqlite', path: url.slice('sqlite:'.length) };
  if (/^postgres(ql)?:\/\//.test(url)) return { dialect: 'postgres', url };
  throw new Error(`database.url: must start with sqlite: or postgres:// (got ${url.split(':')[0]}:…)`);
}

/** The URL without its password, for messages. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
