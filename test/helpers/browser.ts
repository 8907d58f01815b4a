// A browser-less clinician for tests across processes: a cookie jar (./cookie-jar.ts), redirects followed like a
// browser, and the whole Pro Santé Connect login (gateway /auth/login → simulator login page → pick
// the clinician → consent → gateway callback) through whatever address the box is published at.
import { fetch, type Dispatcher, type Headers } from 'undici';
import type { CookieJar } from './cookie-jar.js';

export interface Page { status: number; url: string; body: string; headers: Headers; location?: string }

/** Requests `url` and follows redirects (303, or 302 after a POST → GET) until a non-redirect or `stopAt(url)`. */
export async function browse(jar: CookieJar, dispatcher: Dispatcher | undefined, url: string, init: { method?: string; form?: Record<string, string>; origin?: string; accept?: string } = {}, stopAt?: (u: string) => boolean): Promise<Page> {
  let method = init.method ?? 'GET';
  let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
  for (let hops = 0; hops < 20; hops++) {
    const headers: Record<string, string> = { accept: init.accept ?? 'text/html,application/json' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (body && init.origin) headers.origin = init.origin;
    const res = await fetch(url, { method, headers, body, redirect: 'manual', dispatcher });
    jar.store(res);
    const location = res.headers.get('location') ?? undefined;
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer();
      const next = new URL(location, url).href;
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) { method = 'GET'; body = undefined; }
      if (stopAt?.(next)) return { status: res.status, url: next, body: '', headers: res.headers, location };
      url = next;
      continue;
    }
    return { status: res.status, url, body: await res.text(), headers: res.headers };
  }
  throw new Error('too many redirects');
}

/** The absolute action of the POST form whose inside matches `marker`. */
export function formAction(html: string, pageUrl: string, marker: RegExp): string {
  const f = [...html.matchAll(/<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/g)].find((m) => marker.test(m[2]));
  if (!f) throw new Error(`no form matching ${marker} in page`);
  return new URL(f[1], pageUrl).href;
}

/** Logs `rpps` in at the box published at `boxUrl` through the PSC at `issuer`; the jar then holds the session cookie. */
export async function pscLogin(jar: CookieJar, dispatcher: Dispatcher, boxUrl: string, issuer: string, rpps: string): Promise<void> {
  const loginPage = await browse(jar, dispatcher, `${boxUrl}/auth/login?returnTo=%2F`);
  if (!loginPage.url.startsWith(issuer)) throw new Error(`expected the PSC login page, got ${loginPage.url} ${loginPage.status}`);
  const isBox = (u: string) => u.startsWith(boxUrl) && !u.startsWith(`${boxUrl}/auth/callback`);
  const consent = await browse(jar, dispatcher, formAction(loginPage.body, loginPage.url, new RegExp(`value="${rpps}"`)), { method: 'POST', form: { rpps } }, isBox);
  if (isBox(consent.url)) return; // consent remembered
  const back = await browse(jar, dispatcher, formAction(consent.body, consent.url, /Autoriser/), { method: 'POST', form: {} }, isBox);
  if (!isBox(back.url)) throw new Error(`login did not come back to the box: ${back.url} ${back.status} ${back.body.slice(0, 200)}`);
}
