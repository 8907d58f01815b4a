// The one cookie jar of the tests, for one host as a browser keeps it (cookies ignore ports, so a box
// and the PSC simulator on 127.0.0.1 share it): path-scoped, Max-Age≤0 or a past Expires deletes.
// Hand-written on purpose: tough-cookie is not installed and the tests only meet these attributes.

/** Whatever carries Set-Cookie lines: a fetch Response, or undici `request`'s `headers['set-cookie']`. */
export type SetCookieSource = { headers: { getSetCookie(): string[] } } | string | string[] | undefined;

export class CookieJar {
  private readonly cookies = new Map<string, { value: string; path: string }>();
  /** Every Set-Cookie line received, in order, to assert on attributes (HttpOnly, SameSite…). */
  readonly setCookieLog: string[] = [];

  store(from: SetCookieSource): void {
    const lines = typeof from === 'object' && !Array.isArray(from) ? from.headers.getSetCookie() : [from ?? []].flat();
    for (const line of lines) {
      this.setCookieLog.push(line);
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      let path = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, { value: pair.slice(eq + 1), path });
    }
  }

  /** The Cookie header a browser sends to `url` ('' when none). */
  header(url: string): string {
    const p = new URL(url).pathname;
    return [...this.cookies].filter(([, c]) => p.startsWith(c.path)).map(([n, c]) => `${n}=${c.value}`).join('; ');
  }

  get(name: string): string | undefined {
    return this.cookies.get(name)?.value;
  }
}
