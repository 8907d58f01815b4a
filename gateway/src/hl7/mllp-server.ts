// MLLP listener (node:net): frames <VT> message <FS><CR>, several messages per connection answered in
// order. Garbage, a missing start byte or an oversize message gets a NACK where possible; nothing a
// peer sends can crash the process. Deny by default: only listed sender addresses may connect, the
// number of connections is capped, a connection holds at most one message (maxBytes) plus a few KiB
// of unframed bytes, and a silent connection is closed.
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { frameNack } from './handle.js';

export { handleHl7 } from './handle.js';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;
/** of bytes outside a frame, only this much is kept: enough of an MSH to address the NACK */
const STRAY_KEEP = 4096;
/** unframed bytes tolerated on a connection before it is closed (an MLLP peer sends none) */
const STRAY_MAX = 64 * 1024;

export interface MllpServerOptions {
  host?: string;
  port: number;
  /** sender IP addresses allowed to connect; anyone else is disconnected at once (never empty in a box) */
  allowedSenders: string[];
  /** MLLP over TLS: the listener's certificate and key, and the CA the RIS's client certificate must chain to */
  tls?: { cert: string; key: string; ca: string };
  /** largest message accepted, in bytes (default 32 MiB: reports embed PDFs) */
  maxBytes?: number;
  /** connections open at once (default 8); more are closed at once */
  maxConnections?: number;
  /** idle connection timeout (default 30 s) */
  idleTimeoutMs?: number;
  /** answers one message (text between the frame bytes) with the ACK text */
  handler: (raw: string) => Promise<string>;
  /** unexpected errors (socket errors, handler crashes); no message content is passed */
  onError?: (err: unknown) => void;
  /** a connection closed by the listener (not allowed, too many, idle, unframed flood); addresses only */
  onRefused?: (event: { reason: 'sender-not-allowed' | 'too-many-connections' | 'idle' | 'unframed-bytes' | 'tls-handshake-failed'; remote: string }) => void;
}

export interface MllpServer {
  port: number;
  /** connections open now */
  connections(): number;
  close(): Promise<void>;
}

/** `::ffff:127.0.0.1` (IPv4 on a dual-stack socket) is 127.0.0.1. */
export function senderAddress(addr: string | undefined): string {
  return (addr ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

export function frame(text: string): Buffer {
  return Buffer.concat([Buffer.from([VT]), Buffer.from(text, 'utf8'), Buffer.from([FS, CR])]);
}

/** Decode by MSH-18: UTF-8 unless the sender declares ISO 8859-1. */
function decode(buf: Buffer): string {
  const head = buf.subarray(0, 400).toString('latin1');
  const mshEnd = head.search(/[\r\n]/);
  const msh = mshEnd < 0 ? head : head.slice(0, mshEnd);
  const f = msh[3] ?? '|';
  const charset = msh.split(f)[17] ?? '';
  return /8859/.test(charset) ? buf.toString('latin1') : buf.toString('utf8');
}

export function startMllpServer(opts: MllpServerOptions): Promise<MllpServer> {
  const maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
  const sockets = new Set<Socket>();
  /** connections with nothing in progress (no partial frame, no answer pending), longest idle first */
  const idle = new Map<Socket, true>();
  const onError = opts.onError ?? (() => {});
  const onRefused = opts.onRefused ?? (() => {});
  const allowed = new Set(opts.allowedSenders.map(senderAddress));
  const maxConnections = opts.maxConnections ?? 8;

  const session = (sock: Socket) => {
    if (sock.destroyed) return; // refused on connection
    sock.on('error', (e) => onError(e));
    const remote = senderAddress(sock.remoteAddress);
    if (sockets.size >= maxConnections) {
      // at the cap, a connection left open with nothing in progress makes way (a RIS that never
      // closes its connections); when every one is busy, the new one is refused
      const [oldest] = idle.keys();
      if (!oldest) {
        onRefused({ reason: 'too-many-connections', remote });
        sock.destroy();
        return;
      }
      onRefused({ reason: 'idle', remote: senderAddress(oldest.remoteAddress) });
      idle.delete(oldest);
      sockets.delete(oldest);
      oldest.destroy();
    }
    sockets.add(sock);
    idle.set(sock, true);
    sock.setTimeout(opts.idleTimeoutMs ?? 30_000, () => {
      onRefused({ reason: 'idle', remote });
      sock.destroy();
    });
    sock.on('close', () => {
      sockets.delete(sock);
      idle.delete(sock);
    });

    let chunks: Buffer[] = [];
    let size = 0;
    let inFrame = false;
    let discarding = false; // oversize frame: drop bytes until its end
    let stray: Buffer[] = []; // the head of the bytes outside a frame (STRAY_KEEP at most)
    let strayKept = 0;
    let strayLen = 0;
    let closing = false;
    let pendingFs = false; // last byte seen was FS inside a frame
    let queue: Promise<void> = Promise.resolve();
    let pendingAnswers = 0;
    const markIdle = () => {
      if (!inFrame && strayLen === 0 && pendingAnswers === 0 && !closing && !sock.destroyed) idle.set(sock, true);
    };

    const send = (text: string) => {
      if (!sock.destroyed) sock.write(frame(text));
    };
    const answer = (work: () => Promise<string>) => {
      pendingAnswers++;
      queue = queue.then(async () => {
        try {
          send(await work());
        } catch (e) {
          onError(e);
          send(frameNack('', 'The DRIMbox could not process this message because of an internal problem; it was NOT accepted.', 207));
        }
        pendingAnswers--;
        markIdle();
      });
    };
    const addStray = (b: Buffer) => {
      if (strayKept < STRAY_KEEP) {
        const keep = b.subarray(0, STRAY_KEEP - strayKept);
        stray.push(keep);
        strayKept += keep.length;
      }
      strayLen += b.length;
    };
    const flushStray = (endedByFs: boolean) => {
      const buf = Buffer.concat(stray);
      stray = [];
      strayKept = 0;
      strayLen = 0;
      const text = buf.toString('latin1').replace(/[\s\x1c]/g, '');
      if (text === '') return;
      const raw = decode(buf).replace(/\x1c/g, '');
      answer(async () => frameNack(raw, endedByFs
        ? 'The message was not framed correctly: the MLLP start byte (0x0B) is missing. It was NOT accepted.'
        : 'Unexpected bytes outside an MLLP frame were ignored.'));
    };

    /** a flood of bytes that are no MLLP: one NACK, then the connection is closed */
    const closeUnframed = () => {
      closing = true;
      sock.pause();
      onRefused({ reason: 'unframed-bytes', remote });
      const head = decode(Buffer.concat(stray)).split(/\r|\n/)[0];
      stray = [];
      queue = queue.then(() => new Promise<void>((res) => {
        sock.end(frame(frameNack(head, `The message was not framed correctly (the MLLP start byte 0x0B is missing): more than ${STRAY_MAX} bytes arrived outside an MLLP frame, so the connection is closed. Nothing was accepted.`)), res);
      })).finally(() => sock.destroy());
    };

    sock.on('data', (data: Buffer) => {
      if (closing) return;
      idle.delete(sock);
      let i = 0;
      while (i < data.length) {
        if (!inFrame) {
          const vt = data.indexOf(VT, i);
          const fsAt = data.indexOf(FS, i);
          if (fsAt >= 0 && (vt < 0 || fsAt < vt)) {
            // an end marker with no start: a message sent without the start byte
            addStray(data.subarray(i, fsAt));
            flushStray(true);
            i = fsAt + 1;
            if (data[i] === CR) i++;
            continue;
          }
          if (vt < 0) {
            addStray(data.subarray(i));
            if (strayLen > STRAY_MAX) closeUnframed();
            break;
          }
          if (vt > i) addStray(data.subarray(i, vt));
          if (strayLen > 0) flushStray(false);
          inFrame = true;
          discarding = false;
          chunks = [];
          size = 0;
          i = vt + 1;
          continue;
        }
        // inside a frame
        if (pendingFs) {
          pendingFs = false;
          if (data[i] === CR) i++;
          endFrame(); // FS without CR: taken as the end of frame too
          continue;
        }
        const fsAt = data.indexOf(FS, i);
        if (fsAt < 0) {
          addContent(data.subarray(i));
          break;
        }
        addContent(data.subarray(i, fsAt));
        i = fsAt + 1;
        if (i >= data.length) {
          pendingFs = true;
          break;
        }
        if (data[i] === CR) {
          i++;
          endFrame();
        } else {
          // tolerate FS without CR as the end of frame too (some senders), the next byte is re-examined
          endFrame();
        }
      }
      markIdle();
    });

    function addContent(b: Buffer) {
      if (discarding || b.length === 0) return;
      if (size + b.length > maxBytes) {
        discarding = true;
        const head = Buffer.concat([...chunks, b]).subarray(0, 4096);
        chunks = [];
        size = 0;
        const raw = decode(head).split(/\r|\n/)[0];
        answer(async () => frameNack(raw, `The message is too large (over ${maxBytes} bytes); it was NOT accepted.`));
        return;
      }
      chunks.push(b);
      size += b.length;
    }

    function endFrame() {
      inFrame = false;
      if (discarding) {
        discarding = false;
        return;
      }
      const buf = Buffer.concat(chunks);
      chunks = [];
      size = 0;
      const raw = decode(buf);
      answer(async () => {
        if (raw.replace(/\s/g, '') === '') return frameNack('', 'The MLLP frame was empty.');
        return opts.handler(raw);
      });
    }
  };

  const server = opts.tls
    ? createTlsServer({
      cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key), ca: readFileSync(opts.tls.ca),
      requestCert: true, rejectUnauthorized: true, handshakeTimeout: opts.idleTimeoutMs ?? 30_000,
    }, session)
    : createNetServer(session);
  // the sender check comes first, on the TCP connection: an unlisted address gets no TLS handshake either
  server.prependListener('connection', (sock: Socket) => {
    const remote = senderAddress(sock.remoteAddress);
    if (allowed.has(remote)) return;
    onRefused({ reason: 'sender-not-allowed', remote });
    sock.on('error', () => {});
    sock.destroy();
  });
  server.on('tlsClientError', (_e: Error, sock: Socket) => {
    onRefused({ reason: 'tls-handshake-failed', remote: senderAddress(sock.remoteAddress) });
    sock.destroy();
  });
  server.on('error', (e) => onError(e));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : opts.port;
      resolve({
        port,
        connections: () => sockets.size,
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}
