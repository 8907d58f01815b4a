// A test registry on loopback (dev PKI), and enrolment + operator approval of box identities.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startRegistry, type StartedRegistry } from '../../registry/src/app.js';
import { mtlsAgent } from './box.js';
import { testPki } from './pki.js';

export const REGISTRY_ADMIN = 'registry-admin-token-for-tests-0123456789';

export async function startTestRegistry(): Promise<StartedRegistry> {
  const pki = await testPki();
  const read = (f: string) => readFileSync(f, 'utf8');
  return startRegistry({
    tls: { certPem: read(pki.registry.chain), keyPem: read(pki.registry.key), clientCaPem: read(pki.ca.cert) },
    signer: { keyPem: read(pki.signer.key), chainPem: read(pki.signer.chain) },
    adminToken: REGISTRY_ADMIN,
    dbFile: join(mkdtempSync(join(tmpdir(), 'registry-')), 'registry.db'),
  });
}

/** The box enrols with its own certificate (mutual TLS), then the operator approves it. */
export async function enrolApproved(registry: StartedRegistry, identity: { cert: string; key: string }, boxHost: string, operatorName: string): Promise<number> {
  const r = await request(`${registry.url}/enrolments`, {
    method: 'POST', dispatcher: await mtlsAgent(identity), headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ boxHost, operatorName, supportContact: 'support@example.org' }),
  });
  if (r.statusCode !== 201) throw new Error(`enrolling ${boxHost}: ${r.statusCode} ${await r.body.text()}`);
  const { id } = (await r.body.json()) as { id: number };
  const a = await request(`${registry.url}/enrolments/${id}/approve`, { method: 'POST', dispatcher: await mtlsAgent(), headers: { authorization: `Bearer ${REGISTRY_ADMIN}` } });
  if (a.statusCode !== 200) throw new Error(`approving ${boxHost}: ${a.statusCode}`);
  await a.body.dump();
  return id;
}

/** The operator revokes an enrolment, confirming with its box host as the registry asks. */
export async function revokeEnrolment(registry: StartedRegistry, id: number, boxHost: string): Promise<void> {
  const r = await request(`${registry.url}/enrolments/${id}/revoke`, {
    method: 'POST', dispatcher: await mtlsAgent(),
    headers: { authorization: `Bearer ${REGISTRY_ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ confirm: boxHost }),
  });
  if (r.statusCode !== 200) throw new Error(`revoking #${id}: ${r.statusCode} ${await r.body.text()}`);
  await r.body.dump();
}

/** The operator re-approves an enrolment (undoing a revocation). */
export async function approveEnrolment(registry: StartedRegistry, id: number): Promise<void> {
  const a = await request(`${registry.url}/enrolments/${id}/approve`, { method: 'POST', dispatcher: await mtlsAgent(), headers: { authorization: `Bearer ${REGISTRY_ADMIN}` } });
  if (a.statusCode !== 200) throw new Error(`approving #${id}: ${a.statusCode} ${await a.body.text()}`);
  await a.body.dump();
}
