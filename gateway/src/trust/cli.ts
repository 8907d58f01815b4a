// `drimbox allowlist verify FILE [--trust-anchor PEM ...] [--expected-signer DN]`: check a downloaded
// allow-list by hand. Exit 0 only when the list may be trusted; 1 when it is refused; 2 on usage error.
import { readFileSync } from 'node:fs';
import { verifyAllowList, AllowListRejected } from './allowlist.js';

const USAGE = 'usage: drimbox allowlist verify FILE --trust-anchor PEM [--trust-anchor PEM ...] [--expected-signer DN]';

export async function allowlistVerifyCommand(args: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n'),
  err: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<number> {
  const anchors: string[] = [];
  let file: string | undefined;
  let expected: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--trust-anchor' || a === '--expected-signer') {
      const v = args[++i];
      if (!v) { err(`${a} needs a value\n${USAGE}`); return 2; }
      if (a === '--expected-signer') { expected = v; continue; }
      try {
        anchors.push(readFileSync(v, 'utf8'));
      } catch (e) {
        err(`cannot read trust anchor ${v}: ${(e as Error).message}`);
        return 2;
      }
    } else if (a === '-h' || a === '--help') {
      out(USAGE);
      return 0;
    } else if (a.startsWith('-') || file) {
      err(`unexpected argument ${a}\n${USAGE}`);
      return 2;
    } else file = a;
  }
  if (!file) { err(USAGE); return 2; }
  if (anchors.length === 0) { err(`no --trust-anchor given: a list cannot be trusted without one\n${USAGE}`); return 2; }
  let xml: Buffer;
  try {
    xml = readFileSync(file);
  } catch (e) {
    err(`cannot read ${file}: ${(e as Error).message}`);
    return 2;
  }
  try {
    const { list, signer } = await verifyAllowList(xml, { trustAnchors: anchors, expectedSignerSubject: expected });
    out(`OK: signature and certificate chain verified`);
    out(`signer:    ${signer.subject}`);
    out(`issuer:    ${signer.issuer}`);
    out(`valid to:  ${signer.notAfter.toISOString()}`);
    out(`signed at: ${signer.signingTime.toISOString()}`);
    out(`generated: ${list.generatedAt.toISOString()} (format ${list.versionFormat}), ${list.entries.length} entries`);
    for (const e of list.entries) {
      out(`- [${e.id}] ${e.name}: db=${e.boxHost} vi=${e.viewerHost ?? '-'} dn="${e.operatorDn}" contact=${e.supportContact ?? '-'} updated=${e.updatedAt?.toISOString() ?? '-'}`);
    }
    return 0;
  } catch (e) {
    if (e instanceof AllowListRejected) {
      err(`REFUSED: ${e.reason}`);
      return 1;
    }
    err(`error: ${(e as Error).message}`);
    return 1;
  }
}
