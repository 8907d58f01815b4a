// A minimal operator page: paste the admin credential, see enrolments, approve, revoke (typing the
// box host to confirm) or re-approve a revoked one.
// Everything is rendered with textContent (no HTML injection from enrolment fields).
export function adminPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DRIM-M registry — operator</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top}
.pending{color:#b60}.approved{color:#070}.revoked{color:#999;text-decoration:line-through}
button{margin-right:.4em}#err{color:#b00}
</style></head><body>
<h1>DRIM-M enrolment registry</h1>
<p>Signed allow-list: <a href="/allowlist.xml">/allowlist.xml</a></p>
<form id="login"><label>Operator credential <input id="token" type="password" autocomplete="off" size="40"></label>
<button>Show enrolments</button></form>
<p id="err"></p>
<table><thead><tr><th>#</th><th>Status</th><th>Box host</th><th>Viewer host</th><th>Operator</th><th>Certificate DN</th><th>Contact</th><th>Updated</th><th></th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
const $ = (id) => document.getElementById(id);
$('token').value = sessionStorage.getItem('registryToken') || '';
async function api(path, method, body) {
  const headers = { authorization: 'Bearer ' + $('token').value };
  if (body) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method: method || 'GET', headers, body: body ? JSON.stringify(body) : undefined });
  const body = await r.json();
  if (!r.ok) throw new Error(body.detail || body.title || r.status);
  return body;
}
async function load() {
  $('err').textContent = '';
  sessionStorage.setItem('registryToken', $('token').value);
  try {
    const rows = await api('/enrolments');
    const tb = $('rows'); tb.replaceChildren();
    for (const e of rows) {
      const tr = document.createElement('tr');
      for (const v of [e.id, e.status, e.boxHost, e.viewerHost || '', e.operatorName, e.dn, e.supportContact || '', e.updatedAt]) {
        const td = document.createElement('td'); td.textContent = String(v); tr.append(td);
      }
      tr.children[1].className = e.status;
      const act = document.createElement('td');
      const actions = e.status === 'pending' ? [['Approve', 'approve']] : e.status === 'approved' ? [['Revoke', 'revoke']] : [['Re-approve', 'approve']];
      for (const [label, what] of actions) {
        const b = document.createElement('button'); b.textContent = label;
        b.onclick = async () => {
          let body;
          if (what === 'revoke') {
            // every box refuses a revoked one at its next refresh: the operator types the host to confirm
            const typed = prompt('Revoke ' + e.boxHost + ' (' + e.dn + ')? Every box of the network will refuse it. Type the box host to confirm:');
            if (typed === null) return;
            body = { confirm: typed };
          }
          try { await api('/enrolments/' + e.id + '/' + what, 'POST', body); load(); } catch (x) { $('err').textContent = x.message; }
        };
        act.append(b);
      }
      tr.append(act); tb.append(tr);
    }
  } catch (x) { $('err').textContent = x.message; }
}
$('login').onsubmit = (ev) => { ev.preventDefault(); load(); };
if ($('token').value) load();
</script></body></html>`;
}
