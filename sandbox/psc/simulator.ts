// Pro Santé Connect simulator: a real OpenID provider (oidc-provider 9) on loopback.
// Authorization code + PKCE (required), acr `eidas1`, opaque access tokens with a configurable TTL,
// RFC 7662 introspection for confidential clients (client_secret_basic), PSC-shaped claims,
// RP-initiated logout (end_session_endpoint), and its own login/consent/logout pages listing the
// test clinicians (devInteractions off).
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { DEFAULT_CLINICIANS, pscTokenClaims, pscUserinfoClaims, subOf, type TestClinician } from './clinicians.js';
import { esc, handleInteraction } from './interactions.js';
import { createSimulatorAdapter } from './adapter.js';

export interface PscClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  /** default: <origin of each redirect URI>/auth/logged-out, the box's page after logout */
  post_logout_redirect_uris?: string[];
}

export interface PscSimulatorOptions {
  port?: number; // 0 / absent: a free port
  issuerHost?: string; // host in the issuer URL; the server always binds 127.0.0.1
  clients: PscClient[];
  clinicians?: TestClinician[];
  accessTokenTtlSeconds?: number; // default 600
  tls?: { key: string | Buffer; cert: string | Buffer }; // serve HTTPS instead of HTTP
  dataDir?: string; // keeps signing and cookie keys across restarts
}

export interface IssueAccessTokenOptions {
  rpps: string;
  clientId: string;
  ttlSeconds?: number;
  scope?: string;
  audience?: string | string[];
}

export interface PscSimulator {
  issuer: string;
  port: number;
  clinicians: TestClinician[];
  provider: Provider;
  /** Mints a real access token of the provider (as if the clinician had logged in at `clientId`). */
  issueAccessToken(opts: IssueAccessTokenOptions): Promise<string>;
  /** Revokes an access token (it then introspects as inactive). */
  revokeAccessToken(token: string): Promise<void>;
  /** Requests received so far whose path is `pathname` (e.g. '/token/introspection'). */
  requestCount(pathname: string): number;
  close(): Promise<void>;
}

export const PSC_SCOPES = ['openid', 'scope_all'];
const SCOPE_ALL_CLAIMS = [
  'SubjectNameID', 'preferred_username', 'given_name', 'family_name', 'codeCivilite', 'SubjectOrganization',
  'SubjectRole', 'Palier_Authentification', 'otherIds', 'SubjectRefPro',
];

export async function startPscSimulator(opts: PscSimulatorOptions): Promise<PscSimulator> {
  const clinicians = opts.clinicians ?? DEFAULT_CLINICIANS;
  const bySub = new Map(clinicians.map((c) => [subOf(c), c]));
  const keys = loadOrCreateKeys(opts.dataDir);
  const counts = new Map<string, number>();

  let dispatch: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const pathname = (req.url ?? '/').split('?')[0];
    counts.set(pathname, (counts.get(pathname) ?? 0) + 1);
    dispatch(req, res);
  };
  const server: Server = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest) : createHttpServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `${opts.tls ? 'https' : 'http'}://${opts.issuerHost ?? '127.0.0.1'}:${port}`;

  const provider = new Provider(issuer, {
    clients: opts.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris ?? c.redirect_uris.map((u) => new URL('/auth/logged-out', u).href),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    adapter: createSimulatorAdapter(),
    jwks: { keys: [keys.signingJwk] },
    cookies: { keys: keys.cookieKeys },
    acrValues: ['eidas1'],
    claims: { acr: null, auth_time: null, openid: ['sub'], scope_all: SCOPE_ALL_CLAIMS },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // Only confidential clients (the boxes) may introspect, whichever client the token was issued to.
      introspection: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientAuthMethod: string }) => client.clientAuthMethod !== 'none' },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      // like PSC: a box ends the clinician's PSC session at logout (id_token_hint, post_logout_redirect_uri)
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    // like PSC (Keycloak): a refresh token with every authorization code exchange
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: opts.accessTokenTtlSeconds ?? 600,
      RefreshToken: 8 * 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
    async findAccount(_ctx: unknown, sub: string) {
      const c = bySub.get(sub);
      if (!c) return undefined;
      return { accountId: sub, claims: async () => pscUserinfoClaims(c) };
    },
    async extraTokenClaims(_ctx: unknown, token: { kind: string; accountId?: string }) {
      const c = token.accountId ? bySub.get(token.accountId) : undefined;
      return token.kind === 'AccessToken' && c ? pscTokenClaims(c) : undefined;
    },
    // The simulator's error page: short, no stack traces.
    async renderError(ctx: { type: string; body: string }, out: Record<string, string>) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>PSC simulator error</title><h1>${esc(out.error ?? 'error')}</h1><p>${esc(out.error_description ?? '')}</p>`;
    },
  });
  // Requests arrive over loopback only; never trust X-Forwarded-*.
  provider.proxy = false;
  const providerCallback = provider.callback();

  dispatch = (req, res) => {
    if ((req.url ?? '').startsWith('/interaction/')) {
      handleInteraction(provider, clinicians, req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.statusCode = 400;
          res.setHeader('content-type', 'text/html; charset=utf-8');
        }
        res.end(`<!doctype html><title>PSC simulator</title><p>${esc(err instanceof Error ? err.message : 'error')}</p>`);
      });
      return;
    }
    providerCallback(req, res);
  };

  return {
    issuer,
    port,
    clinicians,
    provider,
    async issueAccessToken({ rpps, clientId, ttlSeconds, scope = PSC_SCOPES.join(' '), audience }) {
      const c = clinicians.find((x) => x.rpps === rpps);
      if (!c) throw new Error(`unknown test clinician RPPS ${rpps}`);
      const client = await provider.Client.find(clientId);
      if (!client) throw new Error(`unknown client ${clientId}`);
      // A grant like the one consent creates, so the token also works at userinfo.
      const grant = new provider.Grant({ accountId: subOf(c), clientId });
      grant.addOIDCScope(scope);
      const grantId = await grant.save();
      const token = new provider.AccessToken({
        accountId: subOf(c),
        client,
        grantId,
        scope,
        gty: 'authorization_code',
        ...(ttlSeconds ? { expiresIn: ttlSeconds } : {}),
        ...(audience ? { aud: audience } : {}),
      });
      return token.save() as Promise<string>;
    },
    async revokeAccessToken(token) {
      const at = await provider.AccessToken.find(token);
      if (at) await at.destroy();
    },
    requestCount: (pathname) => counts.get(pathname) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The logout confirmation: oidc-provider's form (with its xsrf token) and one button. */
async function logoutSource(ctx: { type: string; body: string }, form: string): Promise<void> {
  ctx.type = 'html';
  ctx.body = logoutPage('Pro Santé Connect (simulateur) — déconnexion', '<p>Fermer votre session Pro Santé Connect ?</p>' +
    form.replace('</form>', '<button type="submit" name="logout" value="yes" id="logout">Se déconnecter</button></form>'));
}

async function postLogoutSuccessSource(ctx: { type: string; body: string }): Promise<void> {
  ctx.type = 'html';
  ctx.body = logoutPage('Pro Santé Connect (simulateur)', '<p>Vous êtes déconnecté(e) de Pro Santé Connect.</p>');
}

const logoutPage = (title: string, body: string) =>
  `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${esc(title)}</title></head><body style="font-family:sans-serif;max-width:40em;margin:2em auto"><h1>${esc(title)}</h1>${body}</body></html>`;

interface SimulatorKeys {
  signingJwk: Record<string, unknown>;
  cookieKeys: string[];
}

function loadOrCreateKeys(dataDir?: string): SimulatorKeys {
  const file = dataDir ? join(dataDir, 'psc-simulator-keys.json') : undefined;
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SimulatorKeys;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const keys: SimulatorKeys = {
    signingJwk: { ...jwk, kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' },
    cookieKeys: [randomBytes(32).toString('base64url')],
  };
  if (file && dataDir) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  }
  return keys;
}
