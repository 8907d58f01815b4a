// Builds the allow-list in exactly the ANS `ListeBlancheDRIM-M` format and signs it (XAdES-BASELINE-B).
import { create } from 'xmlbuilder2';
import { ALLOWLIST_NS } from '../../gateway/src/trust/allowlist.js';
import { signEnvelopedXades } from '../../gateway/src/trust/xades-sign.js';
import { isoSeconds, type Enrolment } from './enrolments.js';

export function buildAllowListXml(approved: Enrolment[], generatedAt = new Date()): string {
  const root = create({ version: '1.0', encoding: 'UTF-8', standalone: false })
    .ele(ALLOWLIST_NS, 'ListeBlancheDRIM-M', { versionFormat: '1.0.0' });
  root.ele('DateDeGeneration').txt(isoSeconds(generatedAt));
  const domains = root.ele('ListeDomaines');
  for (const e of approved) {
    const d = domains.ele('Domaine');
    d.ele('Identifiant').txt(String(e.id));
    d.ele('db').txt(e.boxHost);
    if (e.viewerHost) d.ele('vi').txt(e.viewerHost);
    d.ele('Denomination').txt(e.operatorName);
    d.ele('DNCertificatOperateur').txt(e.dn);
    if (e.supportContact) d.ele('SupportContact').txt(e.supportContact);
    d.ele('DateMAJ').txt(e.updatedAt);
  }
  return root.end({ prettyPrint: true });
}

export function signAllowList(xml: string, signer: { keyPem: string; chainPem: string | string[] }): string {
  return signEnvelopedXades(xml, { keyPem: signer.keyPem, certChainPem: signer.chainPem });
}
