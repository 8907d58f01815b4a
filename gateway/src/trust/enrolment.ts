// Self-enrolment at the network registry: the box presents its peer certificate over mutual TLS and
// declares its hosts; an operator approves it (or the demo registry does so at once). Idempotent:
// the registry answers 200 for an enrolment it already holds with the same details.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import type { DrimboxConfig } from '../config/schema.js';

export async function enrolAtRegistry(config: DrimboxConfig, registryUrl: string, logger: Logger): Promise<void> {
  const agent = new Agent({
    connect: {
      ca: readFileSync(config.peer.tls.ca),
      cert: readFileSync(config.peer.tls.cert),
      key: readFileSync(config.peer.tls.key),
    },
  });
  try {
    const body = {
      boxHost: new URL(config.peer.publicUrl).host,
      viewerHost: new URL(config.user.publicUrl).host,
      operatorName: config.box.organization,
      ...(config.allowList?.supportContact ? { supportContact: config.allowList.supportContact } : {}),
    };
    const r = await request(`${registryUrl.replace(/\/+$/, '')}/enrolments`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const answer = (await r.body.json().catch(() => ({}))) as { status?: string; detail?: string };
    if (r.statusCode === 200 || r.statusCode === 201) {
      logger.info({ status: answer.status }, 'enrolled at the registry');
    } else {
      logger.warn({ status: r.statusCode, detail: answer.detail }, 'the registry refused the enrolment');
    }
  } catch (e) {
    // not fatal: the box runs with its last good allow-list and enrols again at its next start
    logger.warn({ err: (e as Error).message }, 'could not reach the registry to enrol');
  } finally {
    await agent.close();
  }
}
