// The single authorization hook of the peer API. Every request from another box passes through
// `PeerAccess.authorize`, which runs the guards in order: client certificate (mutual TLS), the
// network allow-list, then (added by later layers) the clinician's PSC token, and last the scope guard
// (the KOS that grants access to what is asked). Deny by default: a guard that cannot decide refuses,
// and without a scope guard nothing is served, whatever the caller's certificate and token.
import type { FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { HttpProblem } from '../http/problem.js';
import { normaliseDn } from '../trust/allowlist.js';

/** What a peer request asks for. */
export interface PeerScope {
  level: 'query' | 'study' | 'series' | 'instance' | 'frames';
  study?: string;
  series?: string;
  instance?: string;
}

/** Who is asking, as established by the guards so far. */
export interface PeerPrincipal {
  /** subject DN of the client certificate, RFC 2253 form (CN=…,O=…,C=…) */
  dn: string;
  /** clinician's RPPS id, once the token guard ran */
  rpps?: string;
  /** the KOS granting access, once the KOS guard ran */
  kosUid?: string;
  /** patient (INS) the KOS is about, for the audit trail */
  patientId?: string;
  /** the set of instances the KOS grants (undefined: not restricted by a KOS) */
  grant?: KosGrant;
}

export interface KosGrant {
  covers(scope: PeerScope): boolean;
  /** instance UIDs the KOS lists, by series (to filter QIDO answers and study retrieves) */
  instancesOf(study: string, series?: string): Set<string> | undefined;
}

export type PeerGuard = (req: FastifyRequest, scope: PeerScope, principal: PeerPrincipal) => Promise<void> | void;

export class PeerAccess {
  private readonly guards: PeerGuard[] = [];
  private readonly scopeGuards: PeerGuard[] = [];

  /**
   * @param isPeerAllowed whether a certificate subject DN may call at all (allow-list)
   * @param identify establishes the caller's DN; the mutual-TLS client certificate in production
   */
  constructor(
    private isPeerAllowed: (dn: string) => boolean | Promise<boolean>,
    private readonly identify: (req: FastifyRequest) => string = clientCertificateDn,
  ) {}

  /** Replaces the allow-list check (the signed network list supersedes the static one). */
  setPeerFilter(isPeerAllowed: (dn: string) => boolean | Promise<boolean>): void {
    this.isPeerAllowed = isPeerAllowed;
  }

  /** Adds a guard that runs after the certificate and allow-list checks. */
  use(guard: PeerGuard): this {
    this.guards.push(guard);
    return this;
  }

  /**
   * Adds the guard that decides what the request may see (the source role's KOS guard). It runs after
   * every other guard; a box without one serves nothing to peers.
   */
  useScope(guard: PeerGuard): this {
    this.scopeGuards.push(guard);
    return this;
  }

  async authorize(req: FastifyRequest, scope: PeerScope): Promise<PeerPrincipal> {
    const dn = this.identify(req);
    const principal: PeerPrincipal = { dn };
    req.peerPrincipal = principal;
    if (this.scopeGuards.length === 0) {
      throw new HttpProblem(403, 'Peer access not granted', 'this box grants no peer access (it has no KOS-scoped source role)');
    }
    if (!(await this.isPeerAllowed(dn))) {
      throw new HttpProblem(403, 'Peer not allowed', 'the client certificate is not on the network allow-list');
    }
    for (const guard of [...this.guards, ...this.scopeGuards]) await guard(req, scope, principal);
    return principal;
  }
}

/** Subject DN of a verified client certificate; 401 when there is none or it does not chain to our CA. */
export function clientCertificateDn(req: FastifyRequest): string {
  const socket = req.raw.socket as TLSSocket;
  if (typeof socket.getPeerX509Certificate !== 'function') {
    throw new HttpProblem(401, 'Client certificate required', 'the peer API is only served over mutual TLS');
  }
  const cert = socket.getPeerX509Certificate();
  if (!cert) throw new HttpProblem(401, 'Client certificate required', 'no client certificate was presented');
  if (!socket.authorized) {
    throw new HttpProblem(401, 'Client certificate refused', `the client certificate is not trusted (${socket.authorizationError ?? 'unknown issuer'})`);
  }
  return subjectDn(cert);
}

/** RFC 2253 form (most specific RDN first) of a certificate's subject, as the allow-list writes DNs. */
export function subjectDn(cert: X509Certificate): string {
  return cert.subject.split('\n').filter(Boolean).reverse().join(',');
}

/** A static allow-list of DNs (config `peer.allowedPeers`); replaced by the signed network list. */
export function staticPeerList(dns: string[]): (dn: string) => boolean {
  const allowed = new Set(dns.map(normaliseDn));
  return (dn) => allowed.has(normaliseDn(dn));
}

declare module 'fastify' {
  interface FastifyRequest {
    peerPrincipal?: PeerPrincipal;
    peerScope?: PeerScope;
  }
}
