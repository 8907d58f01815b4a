// The simulator's own login and consent pages (the demo's "PSC login"): pick a test clinician,
// then authorize the box. Stands in for the e-CPS / CPS card step of the real PSC.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { subOf, type TestClinician } from './clinicians.js';

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);
}

const PAGE_STYLE = 'body{font-family:sans-serif;max-width:40em;margin:2em auto}li{margin:.5em 0}button{font-size:1em}';

function page(title: string, body: string): string {
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${PAGE_STYLE}</style></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(html);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16_384) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Handles GET /interaction/:uid, POST /interaction/:uid/{login,confirm,abort}. */
export async function handleInteraction(provider: Provider, clinicians: TestClinician[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const [, , uid, action] = (req.url ?? '').split('?')[0].split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const base = `/interaction/${encodeURIComponent(uid)}`;

  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'login') {
      const items = clinicians
        .map(
          (c) => `<li><form method="post" action="${base}/login"><input type="hidden" name="rpps" value="${esc(c.rpps)}">` +
            `<button type="submit" data-rpps="${esc(c.rpps)}">${esc(`${c.givenName} ${c.familyName}`)}</button> ` +
            `${esc(c.professionLabel)} — ${esc(c.specialtyLabel)} (RPPS ${esc(c.rpps)})</form></li>`,
        )
        .join('');
      sendHtml(res, 200, page('Pro Santé Connect (simulateur) — connexion', `<p>Choisissez un professionnel de test :</p><ul>${items}</ul>` +
        `<form method="post" action="${base}/abort"><button type="submit">Annuler</button></form>`));
      return;
    }
    const clientId = String(details.params.client_id ?? '');
    sendHtml(res, 200, page('Pro Santé Connect (simulateur) — autorisation',
      `<p>Le service <strong>${esc(clientId)}</strong> demande l'accès à votre identité professionnelle.</p>` +
        `<form method="post" action="${base}/confirm"><button type="submit" id="confirm">Autoriser</button></form>` +
        `<form method="post" action="${base}/abort"><button type="submit">Refuser</button></form>`));
    return;
  }

  if (req.method === 'POST' && action === 'login') {
    if (details.prompt.name !== 'login') throw new Error('not at the login step');
    const rpps = (await readForm(req)).get('rpps') ?? '';
    const c = clinicians.find((x) => x.rpps === rpps);
    if (!c) {
      sendHtml(res, 400, page('Pro Santé Connect (simulateur)', `<p>RPPS inconnu.</p>`));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: subOf(c), acr: 'eidas1', amr: ['mfa'] } }, { mergeWithLastSubmission: false });
    return;
  }

  if (req.method === 'POST' && action === 'confirm') {
    if (details.prompt.name !== 'consent' || !details.session) throw new Error('not at the consent step');
    const { missingOIDCScope = [], missingOIDCClaims = [], missingResourceScopes = {} } = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (missingOIDCScope.length) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims.length) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }

  if (req.method === 'POST' && action === 'abort') {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'Connexion annulée par l\'utilisateur' }, { mergeWithLastSubmission: false });
    return;
  }

  sendHtml(res, 404, page('Pro Santé Connect (simulateur)', '<p>Page inconnue.</p>'));
}
