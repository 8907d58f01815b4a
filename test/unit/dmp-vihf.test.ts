// VIHF: signed by the box, verified against trust anchors; tampering, foreign signers and expiry fail.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVihf, verifyVihf, VihfError, type VihfInput } from '../../gateway/src/dmp/vihf.js';
import { buildEnvelope, parseEnvelope } from '../../gateway/src/dmp/soap.js';
import { dmpTestPki } from '../helpers/dmp-pki.js';

async function input(signer: 'signer' | 'foreignSigner' = 'signer', authMode: 'INDIRECTE' | 'AIR' = 'INDIRECTE'): Promise<VihfInput> {
  const pki = await dmpTestPki();
  return {
    system: {
      signingCertPem: pki[signer].cert,
      signingKeyPem: pki[signer].key,
      structureId: '499700367909006',
      lpsName: 'DRIMbox',
      lpsVersion: '0.1.0',
      lpsHomologationId: 'HOMOLOGATION-TEST',
    },
    actor: {
      nameId: '899700367909',
      displayName: 'JEAN RADIO',
      roles: [{ code: '10', codeSystem: '1.2.250.1.71.1.2.7', displayName: 'Medecin' }],
      sector: { code: 'SA07', codeSystem: '1.2.250.1.71.4.2.4' },
      authMode,
    },
    patientId: '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH',
  };
}

t.test('a VIHF signs and verifies, inside a SOAP header too', async (t) => {
  const pki = await dmpTestPki();
  const xml = buildVihf(await input());
  t.match(xml, /<ds:SignatureMethod Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmldsig-more#rsa-sha256"/);
  t.match(xml, /<saml2:Issuer[^>]*>[^<]*<\/saml2:Issuer><ds:Signature/, 'signature right after Issuer (SAML schema order)');
  const v = verifyVihf(xml, [pki.caPem]);
  t.equal(v.nameId, '899700367909');
  t.equal(v.authMode, 'INDIRECTE');
  t.equal(v.patientId, '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH');
  t.same(v.attributes.get('Identifiant_Structure'), ['499700367909006']);
  t.same(v.attributes.get('Secteur_Activite'), ['SA07^1.2.250.1.71.4.2.4']);
  t.same(v.attributes.get('urn:oasis:names:tc:xacml:2.0:subject:role'), ['10^1.2.250.1.71.1.2.7']);
  t.same(v.attributes.get('LPS_Nom'), ['DRIMbox']);
  t.same(v.attributes.get('VIHF_Version'), ['3.0']);

  const env = parseEnvelope(buildEnvelope({ action: 'urn:x', to: 'https://127.0.0.1/x', assertion: xml, body: '<a/>' }));
  t.ok(env.assertion, 'assertion found in wsse:Security');
  t.equal(verifyVihf(env.assertion!, [pki.caPem]).nameId, '899700367909', 'still valid after embedding');

  // an independent verifier agrees (xmlsec1, trusting only the test CA)
  const dir = mkdtempSync(join(tmpdir(), 'vihf-'));
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  writeFileSync(join(dir, 'vihf.xml'), xml);
  const run = spawnSync('xmlsec1', ['--verify', '--trusted-pem', join(dir, 'ca.pem'), '--id-attr:ID', 'urn:oasis:names:tc:SAML:2.0:assertion:Assertion', join(dir, 'vihf.xml')], { encoding: 'utf8' });
  t.equal(run.status, 0, 'xmlsec1 verifies the VIHF');
  t.match(run.stderr, /^OK$/m);

  const air = buildVihf(await input('signer', 'AIR'));
  t.match(air, /<saml2:AuthnContextDecl>APP_BROWSER_AUTH<\/saml2:AuthnContextDecl>/);
  t.equal(verifyVihf(air, [pki.caPem]).authMode, 'AIR');
});

t.test('tampered, foreign, expired or unsigned VIHF fail', async (t) => {
  const pki = await dmpTestPki();
  const xml = buildVihf(await input());
  t.throws(() => verifyVihf('<!DOCTYPE a [<!ENTITY e "x">]>' + xml, [pki.caPem]), { name: 'VihfError', faultCode: 'wsse:InvalidSecurityToken', message: /DOCTYPE/ }, 'a DTD before a valid VIHF');
  const tampered = xml.replace('<saml2:NameID>899700367909<', '<saml2:NameID>899700000000<');
  t.not(tampered, xml);
  t.throws(() => verifyVihf(tampered, [pki.caPem]), { name: 'VihfError', faultCode: 'wsse:FailedCheck' }, 'changed NameID');
  const patient = xml.replace('279035121518989^^^', '100000000000000^^^');
  t.throws(() => verifyVihf(patient, [pki.caPem]), { name: 'VihfError', faultCode: 'wsse:FailedCheck' }, 'changed patient');
  const foreign = buildVihf(await input('foreignSigner'));
  t.throws(() => verifyVihf(foreign, [pki.caPem]), { name: 'VihfError', faultCode: 'wsse:InvalidSecurityToken' }, 'untrusted signer');
  t.throws(() => verifyVihf(xml, [pki.caPem], new Date(Date.now() + 3600_000)), { name: 'VihfError', faultCode: 'wsse:InvalidSecurityToken', message: /expired/ });
  const unsigned = xml.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '');
  t.throws(() => verifyVihf(unsigned, [pki.caPem]), { name: 'VihfError', faultCode: 'wsse:FailedCheck' }, 'unsigned');
  t.throws(() => verifyVihf('<nope', [pki.caPem]), { name: 'VihfError', faultCode: 'wsse:InvalidSecurityToken' }, 'not XML');
  t.ok(VihfError);
});
