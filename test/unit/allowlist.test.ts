// The ANS allow-list: the real signed test list verifies (signature + chain); every tampered or
// untrusted variant is refused with a reason; our own signer produces lists the verifier accepts.
import t, { type Test } from 'tap';
import { readFileSync, mkdtempSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyAllowList, parseAllowList, dnMatches, AllowListRejected } from '../../gateway/src/trust/allowlist.js';
import { signEnvelopedXades } from '../../gateway/src/trust/xades-sign.js';
import { ensureDevPki, createCa, issueCertificate } from '../../certs/pki.js';

const fixtures = new URL('../fixtures/ans/liste-blanche/', import.meta.url);
const ansXml = readFileSync(new URL('LISTEBLANCHE_DRIM-M_SIGNEE_TEST.xml', fixtures), 'utf8');
const ansRoot = readFileSync(new URL('igc-sante-test-root.pem', fixtures), 'utf8');
const ANS_SIGNER = 'CN=Liste Blanche DRIM-M,OU=318751275100020,O=AGENCE DU NUMERIQUE EN SANTE,ST=Paris (75),C=FR';

async function rejected(t: Test, xml: string, opts: Parameters<typeof verifyAllowList>[1], reason: RegExp, msg: string) {
  try {
    await verifyAllowList(xml, opts);
    t.fail(`${msg}: accepted`);
  } catch (e) {
    t.ok(e instanceof AllowListRejected, `${msg}: AllowListRejected`);
    t.match((e as AllowListRejected).reason, reason, `${msg}: ${(e as Error).message}`);
  }
}

t.test('the real ANS test list verifies against the IGC-Santé TEST root', async (t) => {
  const { list, signer, chain } = await verifyAllowList(Buffer.from(ansXml, 'utf8'), { trustAnchors: [ansRoot], expectedSignerSubject: ANS_SIGNER });
  t.equal(signer.subject, ANS_SIGNER);
  t.equal(signer.issuer, 'CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS,OU=IGC-SANTE TEST,OU=0002 187512751,O=ASIP-SANTE,C=FR');
  t.equal(signer.notAfter.toISOString(), '2029-09-14T07:56:23.000Z');
  t.equal(signer.signingTime.toISOString(), '2026-09-17T08:27:36.000Z');
  t.equal(chain.length, 3, 'signer, intermediate, root');
  t.equal(list.versionFormat, '1.0.0');
  t.equal(list.generatedAt.toISOString(), '2026-06-19T18:06:52.000Z');
  t.equal(list.entries.length, 17);
  t.same(list.entries[0], {
    id: '3', boxHost: 'db3.test.mesimagesmedicales.fr', viewerHost: 'vi3.test.mesimagesmedicales.fr', name: 'ANS',
    operatorDn: 'CN=db3.test.mesimagesmedicales.fr,OU=300000001831981,O=MINISTERE DE TEST3198,ST=Côte-d\'Or (21),C=FR'.replace(/OU=.*/, '') + 'OU=318751275100020,O=AGENCE DU NUMERIQUE EN SANTE,ST=Paris (75),C=FR',
    supportContact: 'drim-m@esante.gouv.fr', updatedAt: new Date('2024-12-10T11:27:12Z'),
  });
  t.ok(list.entries.some((e) => e.operatorDn.includes("ST=Côte-d'Or (21)")), 'accents survive');
  await verifyAllowList(ansXml, { trustAnchors: [ansRoot], expectedSignerSubject: /^CN=Liste Blanche DRIM-M,/ });
});

t.test('tampered or untrusted variants of the ANS list are refused', async (t) => {
  const opts = { trustAnchors: [ansRoot] };
  const unsigned = ansXml.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '');
  await rejected(t, unsigned, opts, /not signed/, 'unsigned');
  await rejected(t, ansXml.replace('CN=db3.test.mesimagesmedicales.fr', 'CN=evil.example.org'), opts, /digest/, 'DN changed');
  const injected = ansXml.replace('<ListeDomaines>', '<ListeDomaines><Domaine><Identifiant>666</Identifiant><db>evil.example.org</db><vi>evil.example.org</vi><Denomination>Evil</Denomination><DNCertificatOperateur>CN=evil</DNCertificatOperateur><SupportContact>x@y</SupportContact><DateMAJ>2025-01-01T00:00:00Z</DateMAJ></Domaine>');
  await rejected(t, injected, opts, /digest/, 'entry injected');
  const sv = ansXml.match(/<ds:SignatureValue[^>]*>([^<]+)</)![1];
  const flipped = sv.slice(0, 10) + (sv[10] === 'A' ? 'B' : 'A') + sv.slice(11);
  await rejected(t, ansXml.replace(sv, flipped), opts, /signature value is incorrect|signature check failed/, 'SignatureValue corrupted');
  await rejected(t, ansXml.replace('2026-09-17T08:27:36Z', '2026-09-18T08:27:36Z'), opts, /digest/, 'SigningTime changed');
  const dev = await createCa('Some Other CA');
  await rejected(t, ansXml, { trustAnchors: [dev.certPem] }, /trust anchor/, 'wrong trust anchor');
  await rejected(t, ansXml, { trustAnchors: [] }, /no trust anchor/, 'no trust anchor');
  await rejected(t, ansXml, { ...opts, now: new Date('2030-01-01T00:00:00Z') }, /expired/, 'signer expired');
  await rejected(t, ansXml, { ...opts, now: new Date('2026-01-01T00:00:00Z') }, /not valid before/, 'signer not yet valid');
  await rejected(t, ansXml, { ...opts, expectedSignerSubject: 'CN=Someone Else,C=FR' }, /not the expected signer/, 'unexpected signer');
  await rejected(t, '<ListeBlancheDRIM-M', opts, /well-formed/, 'not XML');
  await rejected(t, '<!DOCTYPE x [<!ENTITY a "b">]>' + ansXml.replace(/^<\?xml[^>]*>/, ''), opts, /document type/, 'DOCTYPE');
  const two = ansXml.replace('</ListeBlancheDRIM-M>', ansXml.match(/<ds:Signature[\s\S]*<\/ds:Signature>/)![0] + '</ListeBlancheDRIM-M>');
  await rejected(t, two, opts, /2 signatures/, 'two signatures');
  // KeyInfo cannot choose the key: remove the real signer from KeyInfo.
  const certs = [...ansXml.matchAll(/<ds:X509Certificate>[^<]+<\/ds:X509Certificate>/g)].map((m) => m[0]);
  await rejected(t, ansXml.replace(certs[0], ''), opts, /SigningCertificateV2 does not match/, 'signer certificate removed from KeyInfo');
});

t.test('what is outside the signed content cannot reach the parsed list', async (t) => {
  const smuggled = ansXml.replace('</ds:Object>', '</ds:Object><ds:Object><Domaine xmlns="https://github.com/ansforge/DRIM-M_DATA"><Identifiant>666</Identifiant><db>evil.example.org</db><DNCertificatOperateur>CN=evil</DNCertificatOperateur></Domaine></ds:Object>');
  const { list } = await verifyAllowList(smuggled, { trustAnchors: [ansRoot] });
  t.equal(list.entries.length, 17);
  t.notOk(list.entries.some((e) => e.boxHost === 'evil.example.org'), 'no smuggled entry');
  const commented = ansXml.replace('<ListeDomaines>', '<ListeDomaines><!-- a comment -->');
  t.equal((await verifyAllowList(commented, { trustAnchors: [ansRoot] })).list.entries.length, 17, 'a comment still verifies (XML-DSig)');
});

t.test('an attacker signing with a certificate of another CA is refused', async (t) => {
  const evilCa = await createCa('Evil CA');
  const evil = await issueCertificate(evilCa, { commonName: 'Liste Blanche DRIM-M', organizationalUnit: '318751275100020', organization: 'AGENCE DU NUMERIQUE EN SANTE', usage: 'signing' });
  const unsigned = ansXml.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '').replace('db3.test', 'evil');
  const forged = signEnvelopedXades(unsigned, { keyPem: evil.keyPem, certChainPem: [evil.certPem, evilCa.certPem] });
  await rejected(t, forged, { trustAnchors: [ansRoot] }, /trust anchor/, 'forged list');
});

t.test('our signer round-trips with the dev PKI, tampering is detected', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'al-'));
  const pki = await ensureDevPki(dir, { boxes: ['box-a'] });
  const unsigned = ansXml.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '');
  const signed = signEnvelopedXades(unsigned, { keyPem: readFileSync(pki.signer.key, 'utf8'), certChainPem: readFileSync(pki.signer.chain, 'utf8'), signingTime: new Date(Date.now() - 60_000) });
  t.equal(signed.match(/<\?xml/g)?.length, 1, 'one XML declaration');
  t.match(signed, /<xades:SigningTime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/xades:SigningTime>/, 'SigningTime without milliseconds');
  t.match(signed, /xmldsig-filter2/);
  t.match(signed, /<xades:IssuerSerialV2>/);
  t.match(signed, /<xades:DataObjectFormat ObjectReference="#r-id-[0-9a-f]+-1"><xades:MimeType>text\/xml/);
  const anchors = [readFileSync(pki.ca.cert, 'utf8')];
  const { list, signer } = await verifyAllowList(signed, { trustAnchors: anchors });
  t.equal(list.entries.length, 17);
  t.equal(signer.subject, pki.signer.subjectDn);
  await rejected(t, signed.replace('db4.test', 'db44.test'), { trustAnchors: anchors }, /digest/, 'own list tampered');
  // Pinning the signing CA alone also works (intermediate as anchor).
  await verifyAllowList(signed, { trustAnchors: [readFileSync(pki.signingCa.cert, 'utf8')] });
  t.throws(() => signEnvelopedXades(signed, { keyPem: readFileSync(pki.signer.key, 'utf8'), certChainPem: readFileSync(pki.signer.chain, 'utf8') }), /already signed/);
});

t.test('parseAllowList refuses foreign or incomplete documents', async (t) => {
  t.throws(() => parseAllowList('<Other/>'), AllowListRejected);
  t.throws(() => parseAllowList('<ListeBlancheDRIM-M xmlns="https://github.com/ansforge/DRIM-M_DATA" versionFormat="1.0.0"><DateDeGeneration>2026-01-01T00:00:00Z</DateDeGeneration><ListeDomaines><Domaine><Identifiant>1</Identifiant></Domaine></ListeDomaines></ListeBlancheDRIM-M>'), /no db/);
  t.throws(() => parseAllowList('<ListeBlancheDRIM-M xmlns="https://github.com/ansforge/DRIM-M_DATA" versionFormat="2.0.0"><DateDeGeneration>2026-01-01T00:00:00Z</DateDeGeneration></ListeBlancheDRIM-M>'), /versionFormat/);
});

t.test('dnMatches: node subject form vs the list form', async (t) => {
  const listed = "CN=db175.test.mesimagesmedicales.fr,OU=300000001831981,O=MINISTERE DE TEST3198,ST=Côte-d'Or (21),C=FR";
  const nodeForm = "C=FR\nST=Côte-d'Or (21)\nO=MINISTERE DE TEST3198\nOU=300000001831981\nCN=db175.test.mesimagesmedicales.fr";
  t.ok(dnMatches(nodeForm, listed), 'node multi-line form, reversed order');
  t.ok(dnMatches("CN = db175.test.mesimagesmedicales.fr, OU=300000001831981, O=MINISTERE  DE TEST3198, S=Côte-d'Or (21), C=fr", listed), 'spaces, aliases, case');
  t.ok(dnMatches('CN=Centre A\\, Paris,C=FR', 'C=FR\nCN=Centre A\\, Paris'), 'escaped comma');
  t.notOk(dnMatches(nodeForm, listed.replace('TEST3198', 'TEST3199')), 'different O');
  t.notOk(dnMatches('CN=db175.test.mesimagesmedicales.fr', listed), 'subset is not a match');
  // A real certificate with a comma and an accent in its subject.
  const ca = await createCa('DN CA');
  const c = await issueCertificate(ca, { commonName: 'box', organization: 'Centre Hospitalier, Dijon', organizationalUnit: 'Côte-d\'Or', usage: 'client' });
  const node = new X509Certificate(c.certPem).subject;
  t.ok(dnMatches(node, 'CN=box,OU=Côte-d\'Or,O=Centre Hospitalier\\, Dijon,C=FR'), `node subject ${JSON.stringify(node)}`);
  t.ok(dnMatches(node, c.subjectDn));
});
