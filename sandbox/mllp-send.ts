// A minimal MLLP sender for the demo: frames one HL7 message, waits for the ACK, returns its text.
import { connect } from 'node:net';
import { frame } from '../gateway/src/hl7/mllp-server.js';

export function sendMllp(host: string, port: number, message: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no ACK within the time limit')); }, timeoutMs);
    socket.on('connect', () => socket.write(frame(message)));
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf(0x1c);
      if (end >= 0) {
        clearTimeout(timer);
        socket.end();
        resolve(buf.subarray(buf.indexOf(0x0b) + 1, end).toString('utf8'));
      }
    });
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}
