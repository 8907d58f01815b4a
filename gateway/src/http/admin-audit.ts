// Admin search and export of the audit trail on the user listener: GET /admin/audit (JSON, or CSV
// with ?format=csv) and GET /admin/audit/page (a small French HTML page). Rows are study accesses
// (see store/audit-access.ts), filtered by patient INS, clinician RPPS, peer, study and date.
// Every route needs `Authorization: Bearer <admin.token>`.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { stringify } from 'csv-stringify/sync';
import { HttpProblem } from './problem.js';
import { escapeHtml } from './html.js';
import { adminCheck } from '../source/admin.js';
import type { AuditFilter, AuditLog } from '../store/audit.js';
import { foldAccesses, type StudyAccess } from '../store/audit-access.js';

export interface AdminAuditOptions {
  audit: AuditLog;
  token: string;
  /** requests of one key closer than this make one access */
  windowMinutes: number;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const MAX_LIMIT = 100_000;

interface Search {
  ins?: string;
  rpps?: string;
  peer?: string;
  study?: string;
  from?: string;
  to?: string;
  limit: number;
}

function text(q: Record<string, unknown>, name: string, re: RegExp, hint: string): string | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !re.test(v)) throw new HttpProblem(400, `Bad ${name}`, `${name} must be ${hint}`);
  return v;
}

function parseSearch(q: Record<string, unknown>): Search {
  const from = text(q, 'from', DATE, 'a date YYYY-MM-DD');
  const to = text(q, 'to', DATE, 'a date YYYY-MM-DD');
  if (from && Number.isNaN(Date.parse(from))) throw new HttpProblem(400, 'Bad from', 'from is not a calendar date');
  if (to && Number.isNaN(Date.parse(to))) throw new HttpProblem(400, 'Bad to', 'to is not a calendar date');
  const limitRaw = text(q, 'limit', /^\d{1,6}$/, `an integer from 1 to ${MAX_LIMIT}`);
  const limit = limitRaw ? Number(limitRaw) : 1000;
  if (limit < 1 || limit > MAX_LIMIT) throw new HttpProblem(400, 'Bad limit', `limit must be an integer from 1 to ${MAX_LIMIT}`);
  return {
    ins: text(q, 'ins', /^[0-9A-Za-z]{1,64}$/, 'a patient identifier (letters and digits)'),
    rpps: text(q, 'rpps', /^\d{1,20}$/, 'an RPPS number (digits)'),
    peer: text(q, 'peer', /^[^\0]{1,256}$/, 'part of a certificate DN'),
    study: text(q, 'study', /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/, 'a study instance UID'),
    from, to, limit,
  };
}

function search(audit: AuditLog, s: Search, windowMs: number) {
  const filter: AuditFilter = {
    ins: s.ins, rpps: s.rpps, study: s.study, peer: s.peer,
    from: s.from && `${s.from}T00:00:00.000Z`,
    to: s.to && new Date(Date.parse(`${s.to}T00:00:00.000Z`) + 86_400_000).toISOString(),
  };
  return foldAccesses(audit.rows(filter), windowMs, s.limit);
}

const COLUMNS: (keyof StudyAccess)[] = ['firstAt', 'lastAt', 'direction', 'peerDn', 'rpps', 'ins', 'studyUid', 'kosUid', 'kind', 'route', 'requests', 'bytes', 'refused', 'lastStatus', 'outcome'];

const DIRECTION_FR: Record<string, string> = { 'peer-in': 'servi à un pair', 'peer-out': 'demandé à un pair', user: 'utilisateur', admin: 'administration' };
const KIND_FR: Record<string, string> = { retrieve: 'images', frames: 'trames', metadata: 'métadonnées', query: 'recherche', other: 'autre' };

function page(s: Search, found: { items: StudyAccess[]; truncated: boolean }, query: string): string {
  const field = (name: keyof Search, label: string, type = 'text') =>
    `<label>${label} <input type="${type}" name="${name}" value="${escapeHtml(String(s[name] ?? ''))}"></label>`;
  const rows = found.items.map((a) => `<tr>${[
    a.firstAt, a.lastAt, DIRECTION_FR[a.direction] ?? a.direction, a.peerDn ?? '', a.rpps ?? '', a.ins ?? '', a.studyUid ?? '',
    a.kind === 'other' ? a.route : KIND_FR[a.kind], String(a.requests), String(a.bytes), String(a.refused), String(a.lastStatus), a.outcome ?? '',
  ].map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Journal d'audit — DRIMbox</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #bbb;padding:.2em .4em;text-align:left}label{margin-right:1em}</style>
</head><body>
<h1>Journal d'audit</h1>
<p>Un accès regroupe les requêtes d'un même pair, professionnel, patient, examen et type d'accès rapprochées dans le temps.</p>
<form method="get" action="/admin/audit/page">
${field('ins', 'INS du patient')} ${field('rpps', 'RPPS du professionnel')} ${field('peer', 'Pair (DN du certificat)')} ${field('study', 'Examen (Study UID)')}
${field('from', 'Du', 'date')} ${field('to', 'Au', 'date')} <button type="submit">Rechercher</button>
</form>
<p>Exporter : <a href="/admin/audit?${escapeHtml(query ? `${query}&` : '')}format=csv">CSV</a> · <a href="/admin/audit?${escapeHtml(query)}">JSON</a></p>
<p>${found.items.length} accès${found.truncated ? ' (liste tronquée : affinez la recherche)' : ''}</p>
<table><thead><tr><th>Début</th><th>Fin</th><th>Sens</th><th>Pair</th><th>Professionnel (RPPS)</th><th>Patient (INS)</th><th>Examen</th><th>Accès</th><th>Requêtes</th><th>Octets</th><th>Refus</th><th>Dernier statut</th><th>Motif</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>`;
}

function queryString(s: Search): string {
  const p = new URLSearchParams();
  for (const k of ['ins', 'rpps', 'peer', 'study', 'from', 'to'] as const) if (s[k]) p.set(k, s[k]!);
  return p.toString();
}

export function adminAuditRoutes(app: FastifyInstance, o: AdminAuditOptions): void {
  const requireAdmin = adminCheck(o.token);
  const windowMs = o.windowMinutes * 60_000;
  app.register(async (admin) => {
    admin.addHook('onRequest', async (req) => requireAdmin(req));

    admin.get('/admin/audit', async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const format = q.format ?? 'json';
      if (format !== 'json' && format !== 'csv') throw new HttpProblem(400, 'Bad format', 'format must be json or csv');
      const s = parseSearch(q);
      const found = await search(o.audit, s, windowMs);
      reply.header('cache-control', 'private, no-store');
      if (format === 'csv') {
        return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="drimbox-audit.csv"')
          .send(stringify(found.items, { header: true, columns: COLUMNS as string[] }));
      }
      return { windowMinutes: o.windowMinutes, truncated: found.truncated, items: found.items };
    });

    admin.get('/admin/audit/page', async (req, reply) => {
      const s = parseSearch(req.query as Record<string, unknown>);
      return reply.type('text/html; charset=utf-8').header('cache-control', 'private, no-store')
        .send(page(s, await search(o.audit, s, windowMs), queryString(s)));
    });
  });
}
