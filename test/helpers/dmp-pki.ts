// In-memory PKI for DMP tests: a CA, the DMP server cert (127.0.0.1), the box's TLS client cert and
// its signing cert (VIHF + submission signature), and a foreign CA whose signatures must be refused.
import { createCa, issueCertificate } from '../../certs/pki.js';

export interface DmpTestPki {
  caPem: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
  signer: { cert: string; key: string };
  foreignSigner: { cert: string; key: string };
}

let cached: Promise<DmpTestPki> | undefined;

export function dmpTestPki(): Promise<DmpTestPki> {
  cached ??= (async () => {
    const ca = await createCa('DMP Test CA');
    const other = await createCa('Untrusted CA');
    const server = await issueCertificate(ca, { commonName: 'dmp-simulator', usage: 'server' });
    const client = await issueCertificate(ca, { commonName: 'box-a', organization: 'CENTRE IMAGERIE TEST', usage: 'client' });
    const signer = await issueCertificate(ca, { commonName: 'DRIMbox', organizationalUnit: '499700367909006', organization: 'CENTRE IMAGERIE TEST', usage: 'signing' });
    const foreign = await issueCertificate(other, { commonName: 'DRIMbox', usage: 'signing' });
    return {
      caPem: ca.certPem,
      server: { cert: server.certPem, key: server.keyPem },
      client: { cert: client.certPem, key: client.keyPem },
      signer: { cert: signer.certPem, key: signer.keyPem },
      foreignSigner: { cert: foreign.certPem, key: foreign.keyPem },
    };
  })();
  return cached;
}
