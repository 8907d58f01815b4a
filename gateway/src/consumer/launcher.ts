// The demo launcher page: one button per demo patient sending a real contextual call (the same form
// a RIS would POST), and report links (IHE IID) as a referring clinician would follow them.
import { escapeHtml } from '../http/html.js';

export interface LauncherEntry {
  label: string;
  /** the contextual call fields (DRIM-M.md §5 names) */
  form: Record<string, string>;
  /** report links, e.g. /IHEInvokeImageDisplay?requestType=STUDY&studyUID=…&patientID=… */
  reportLinks?: { label: string; href: string }[];
}

export function launcherPage(entries: LauncherEntry[]): string {
  const items = entries.map((e) => `
    <section>
      <h2>${escapeHtml(e.label)}</h2>
      <form method="post" action="/contextual-call">
        ${Object.entries(e.form).map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`).join('\n        ')}
        <button type="submit">Appel contextuel</button>
      </form>
      ${(e.reportLinks ?? []).map((l) => `<p><a href="${escapeHtml(l.href)}">${escapeHtml(l.label)}</a></p>`).join('')}
    </section>`).join('');
  return `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>DRIMbox — lanceur de démonstration</title>
<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}section{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}button{font-size:1em;padding:.4em 1em}</style>
</head><body>
<h1>DRIMbox — lanceur de démonstration</h1>
<p>Chaque bouton envoie à cette DRIMbox l'appel contextuel qu'enverrait un RIS ou un DPI ; les liens ouvrent l'examen comme depuis un compte rendu.</p>
${items || '<p>Aucun patient de démonstration.</p>'}
</body></html>`;
}
