// Clinician login with Pro Santé Connect (OpenID Connect, authorization code + PKCE + state +
// nonce, openid-client 6) and the guard that puts a PSC session in front of user routes.
// Routes: GET /auth/login?returnTo=/relative, GET /auth/callback, POST /auth/logout (ends the PSC
// session too), GET /auth/logged-out, GET /auth/me.
// A session's access token (what source boxes are shown) is renewed with its refresh token shortly
// before it expires, once per session however many requests arrive together.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as oidc from 'openid-client';
import { sendProblem } from '../http/problem.js';
import { clinicianFromPscClaims } from './psc-claims.js';
import { LOGIN_COOKIE, SESSION_COOKIE, readCookie, serializeCookie, type ClinicianSession, type SessionStore } from './sessions.js';

export interface PscLoginOptions {
  issuer: string; // PSC issuer URL (discovery at <issuer>/.well-known/openid-configuration)
  clientId: string;
  clientSecret: string;
  redirectUri: string; // absolute URL of this box's GET /auth/callback, as registered at PSC
  postLogoutRedirectUri?: string; // where PSC sends the browser after logout; default <origin of redirectUri>/auth/logged-out (register it at PSC)
  acrValues?: string[]; // default ['eidas1']; the ID token's acr must be one of them
  scopes?: string[]; // default ['openid', 'scope_all']
  sessions: SessionStore;
  allowInsecureIssuer?: boolean; // http:// issuer (sandbox, tests); default: true only for a loopback http issuer
  fetch?: typeof fetch; // e.g. undici's fetch with an Agent trusting a private CA (sandbox PSC over HTTPS)
}

declare module 'fastify' {
  interface FastifyRequest {
    clinicianSession?: ClinicianSession;
  }
  interface FastifyInstance {
    pscSessions?: SessionStore;
    /** renews a session's PSC tokens; undefined when that is not possible (the clinician logs in again) */
    pscRefresh?: (session: ClinicianSession) => Promise<ClinicianSession | undefined>;
  }
}

/**
 * Where to send the browser after login: a path on the box's own origin, else '/'. The value is
 * resolved with the WHATWG URL parser, as the browser will resolve the Location header, and so is
 * the path emitted: `/.//evil`, `/%2e//evil`, `/\evil`, tabs or newlines that collapse into `//evil`
 * all resolve to another origin and are refused.
 */
export function safeReturnTo(value: unknown, origin = 'https://box.invalid'): string {
  if (typeof value !== 'string' || value.length > 2048 || !value.startsWith('/')) return '/';
  if (/[\u0000-\u001f\u007f]/.test(value)) return '/'; // the parser drops tabs and newlines: never guess what was meant
  const sameOrigin = (v: string): URL | undefined => {
    try {
      const u = new URL(v, origin);
      return u.origin === new URL(origin).origin ? u : undefined;
    } catch {
      return undefined;
    }
  };
  const u = sameOrigin(value);
  if (!u) return '/';
  const path = u.pathname + u.search + u.hash;
  return path.startsWith('/') && sameOrigin(path)?.pathname === u.pathname ? path : '/';
}

function isLoopbackHttp(issuer: string): boolean {
  const u = new URL(issuer);
  return u.protocol === 'http:' && (u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]');
}

function wantsHtml(req: FastifyRequest): boolean {
  const accept = String(req.headers.accept ?? '');
  return req.method === 'GET' && accept.includes('text/html');
}

/** Registers the /auth routes. Use with `app.register(pscLoginPlugin, opts)`; it is not encapsulated. */
export async function pscLoginPlugin(app: FastifyInstance, opts: PscLoginOptions): Promise<void> {
  const scopes = opts.scopes ?? ['openid', 'scope_all'];
  const acrValues = opts.acrValues ?? ['eidas1'];
  const insecure = opts.allowInsecureIssuer ?? isLoopbackHttp(opts.issuer);
  const { sessions } = opts;
  const boxOrigin = new URL(opts.redirectUri).origin;
  const postLogoutRedirectUri = opts.postLogoutRedirectUri ?? `${boxOrigin}/auth/logged-out`;
  if (!app.hasDecorator('pscSessions')) app.decorate('pscSessions', sessions);
  if (!app.hasRequestDecorator('clinicianSession')) app.decorateRequest('clinicianSession', undefined);
  const refreshing = new Map<string, Promise<ClinicianSession | undefined>>();
  const refresh = (session: ClinicianSession): Promise<ClinicianSession | undefined> => {
    let p = refreshing.get(session.id);
    if (!p) {
      p = renewTokens(session).finally(() => refreshing.delete(session.id));
      refreshing.set(session.id, p);
    }
    return p;
  };
  if (!app.hasDecorator('pscRefresh')) app.decorate('pscRefresh', refresh);

  // Discovery on first use, retried after a failure (PSC may come up after the box).
  let config: Promise<oidc.Configuration> | undefined;
  const getConfig = () => {
    const discoveryOptions: oidc.DiscoveryRequestOptions = {
      ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      ...(opts.fetch ? { [oidc.customFetch]: opts.fetch as oidc.CustomFetch } : {}),
    };
    config ??= oidc
      .discovery(new URL(opts.issuer), opts.clientId, undefined, oidc.ClientSecretBasic(opts.clientSecret), discoveryOptions)
      .catch((err: unknown) => {
        config = undefined;
        throw err;
      });
    return config;
  };

  async function renewTokens(session: ClinicianSession): Promise<ClinicianSession | undefined> {
    if (!session.refreshToken) return undefined;
    try {
      const tokens = await oidc.refreshTokenGrant(await getConfig(), session.refreshToken);
      const expiresIn = tokens.expiresIn();
      const renewed = {
        accessToken: tokens.access_token,
        ...(expiresIn !== undefined ? { accessTokenExpiresAt: Date.now() + expiresIn * 1000 } : {}),
        ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
        ...(tokens.id_token ? { idToken: tokens.id_token } : {}),
      };
      await sessions.updateTokens(session.id, renewed);
      app.log.info({ rpps: session.clinician.rpps }, 'PSC tokens renewed');
      return { ...session, ...renewed, accessTokenExpiresAt: renewed.accessTokenExpiresAt };
    } catch (err) {
      const e = err as { error?: string; message?: string };
      app.log.warn({ reason: e.error ?? e.message }, 'PSC token renewal refused: the clinician must log in again');
      return undefined;
    }
  }

  app.get('/auth/login', async (req, reply) => {
    const returnTo = safeReturnTo((req.query as Record<string, unknown>).returnTo, boxOrigin);
    let cfg: oidc.Configuration;
    try {
      cfg = await getConfig();
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, 'PSC discovery failed');
      return sendProblem(reply, 502, 'Pro Santé Connect unreachable');
    }
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const txId = await sessions.beginLogin({ state, nonce, codeVerifier, returnTo });
    const url = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: opts.redirectUri,
      scope: scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(acrValues.length ? { acr_values: acrValues.join(' ') } : {}),
    });
    return reply
      .header('set-cookie', serializeCookie(LOGIN_COOKIE, txId, { path: '/auth', maxAgeSeconds: sessions.loginTimeoutMs / 1000 }))
      .header('cache-control', 'no-store')
      .redirect(url.href, 302);
  });

  app.get('/auth/callback', async (req, reply) => {
    const tx = await sessions.takeLogin(readCookie(req.headers.cookie, LOGIN_COOKIE));
    reply.header('set-cookie', serializeCookie(LOGIN_COOKIE, '', { path: '/auth', maxAgeSeconds: 0 }));
    if (!tx) return sendProblem(reply, 400, 'No login in progress', 'Start again from /auth/login.');
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    const currentUrl = new URL(opts.redirectUri);
    currentUrl.search = query;
    let cfg: oidc.Configuration;
    try {
      cfg = await getConfig();
    } catch {
      return sendProblem(reply, 502, 'Pro Santé Connect unreachable');
    }
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(cfg, currentUrl, {
        pkceCodeVerifier: tx.codeVerifier,
        expectedState: tx.state,
        expectedNonce: tx.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      // State mismatch, error=access_denied, a refused code or verifier: the user's login failed.
      const e = err as { message?: string; error?: string; code?: string };
      req.log.warn({ reason: e.error ?? e.code ?? e.message }, 'PSC login rejected');
      return sendProblem(reply, 400, 'Login failed', e.error ?? e.message ?? 'invalid authorization response');
    }
    const idClaims = tokens.claims();
    if (!idClaims) return sendProblem(reply, 400, 'Login failed', 'no ID token');
    if (acrValues.length && !acrValues.includes(String(idClaims.acr ?? ''))) {
      return sendProblem(reply, 403, 'Authentication level too low', `acr must be one of ${acrValues.join(', ')}`);
    }
    let userinfo: Record<string, unknown>;
    try {
      userinfo = (await oidc.fetchUserInfo(cfg, tokens.access_token, idClaims.sub)) as Record<string, unknown>;
    } catch (err) {
      req.log.warn({ reason: (err as Error).message }, 'PSC userinfo failed');
      return sendProblem(reply, 502, 'Pro Santé Connect userinfo failed');
    }
    const clinician = clinicianFromPscClaims(userinfo);
    if (!clinician) return sendProblem(reply, 403, 'Not a registered health professional', 'PSC identity carries no RPPS identifier');
    const expiresIn = tokens.expiresIn();
    const session = await sessions.create(clinician, {
      accessToken: tokens.access_token,
      ...(expiresIn !== undefined ? { accessTokenExpiresAt: Date.now() + expiresIn * 1000 } : {}),
      ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
      ...(tokens.id_token ? { idToken: tokens.id_token } : {}),
    });
    req.log.info({ rpps: clinician.rpps }, 'clinician logged in');
    return reply
      .header('set-cookie', [
        serializeCookie(LOGIN_COOKIE, '', { path: '/auth', maxAgeSeconds: 0 }),
        serializeCookie(SESSION_COOKIE, session.id, { maxAgeSeconds: sessions.absoluteTimeoutMs / 1000 }),
      ])
      .header('cache-control', 'no-store')
      .redirect(tx.returnTo, 303);
  });

  // Logout ends the box session and, through the browser, the PSC session too (RP-initiated logout):
  // otherwise the next login at PSC goes straight through as the same clinician. A browser form gets
  // a 303 to PSC; a script (the viewer) gets {"redirect": url} to navigate to.
  app.post('/auth/logout', async (req, reply) => {
    const id = readCookie(req.headers.cookie, SESSION_COOKIE);
    const session = await sessions.get(id);
    await sessions.delete(id);
    reply.header('set-cookie', serializeCookie(SESSION_COOKIE, '', { maxAgeSeconds: 0 })).header('cache-control', 'no-store');
    const html = String(req.headers.accept ?? '').includes('text/html');
    let endSession: string | undefined;
    if (session?.idToken) {
      try {
        const cfg = await getConfig();
        if (cfg.serverMetadata().end_session_endpoint) {
          endSession = oidc.buildEndSessionUrl(cfg, { id_token_hint: session.idToken, post_logout_redirect_uri: postLogoutRedirectUri }).href;
        }
      } catch (err) {
        req.log.warn({ reason: (err as Error).message }, 'PSC unreachable at logout: its session stays open');
      }
    }
    if (html) return reply.redirect(endSession ?? '/auth/logged-out', 303);
    return endSession ? reply.send({ redirect: endSession }) : reply.code(204).send();
  });

  app.get('/auth/logged-out', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
    .send('<!doctype html><html lang="fr"><meta charset="utf-8"><title>Déconnecté</title><body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>Vous êtes déconnecté(e)</h1><p>Votre session DRIMbox et votre session Pro Santé Connect sont fermées.</p></body></html>'));

  app.get('/auth/me', async (req, reply) => {
    const session = await sessions.get(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (!session) return sendProblem(reply, 401, 'Not logged in');
    const { rpps, name, profession } = session.clinician;
    return { rpps, name, ...(profession ? { profession } : {}), sessionExpiresAt: new Date(session.expiresAt).toISOString() };
  });
}
// Not encapsulated (like fastify-plugin): decorations and routes land on the parent instance.
(pscLoginPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

/** renewed this long before expiry, so that a request forwarded to a source box still carries a valid token */
const RENEW_BEFORE_MS = 30_000;
const tokenNearExpiry = (s: ClinicianSession) => s.accessTokenExpiresAt !== undefined && s.accessTokenExpiresAt - Date.now() < RENEW_BEFORE_MS;

/**
 * preHandler: requires a live PSC session. Browsers (GET, Accept: text/html) are redirected to
 * /auth/login?returnTo=<this URL>; API calls get 401 problem+json. Sets req.clinicianSession.
 */
export async function requireClinician(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  const sessions = req.server.pscSessions;
  if (!sessions) throw new Error('pscLoginPlugin is not registered');
  let session = await sessions.get(readCookie(req.headers.cookie, SESSION_COOKIE));
  if (session && tokenNearExpiry(session)) {
    // a session whose token cannot be renewed can no longer reach any source box: log in again
    session = await req.server.pscRefresh?.(session);
  }
  if (session) {
    req.clinicianSession = session;
    return undefined;
  }
  // Returning the reply tells Fastify the hook answered: the route handler does not run.
  if (wantsHtml(req)) return reply.redirect(`/auth/login?returnTo=${encodeURIComponent(safeReturnTo(req.url))}`, 302);
  return sendProblem(reply, 401, 'PSC login required', 'Log in with Pro Santé Connect at /auth/login.');
}
