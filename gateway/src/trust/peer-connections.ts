// The peer listener's open connections, so that a box dropped from the allow-list or whose
// certificate was revoked loses what it already holds (keep-alive connections, a retrieve streaming
// at that moment) as soon as the box learns it, not only at its next request.
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';

export class PeerConnections {
  private readonly sockets = new Set<TLSSocket>();

  constructor(server: Server) {
    server.on('secureConnection', (s: TLSSocket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /**
   * Closes every connection whose verified client certificate `stillTrusted` refuses (connections
   * without a verified certificate are refused per request anyway). Returns the dropped subjects.
   */
  drop(stillTrusted: (cert: X509Certificate) => boolean): X509Certificate[] {
    const dropped: X509Certificate[] = [];
    for (const s of this.sockets) {
      const cert = s.authorized ? s.getPeerX509Certificate() : undefined;
      if (!cert || stillTrusted(cert)) continue;
      dropped.push(cert);
      s.destroy();
      this.sockets.delete(s);
    }
    return dropped;
  }
}
