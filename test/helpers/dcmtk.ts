// dcmtk's storescu as the DIMSE peer of a test: one C-STORE association to a box on loopback.
import { spawn } from 'node:child_process';

/** Sends `file` from `callingAet` to `calledAet` at 127.0.0.1:`port`; its exit status and verbose output (killed after 20 s). */
export function storescu(port: number, callingAet: string, calledAet: string, file: string): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('storescu', ['-v', '-aet', callingAet, '-aec', calledAet, '127.0.0.1', String(port), file]);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('error', (e) => { clearTimeout(timer); reject(new Error(`storescu (dcmtk) could not run: ${e.message}`)); });
    p.on('close', (status) => { clearTimeout(timer); resolve({ status, out }); });
  });
}
