// DmpClient ↔ DMP simulator over mutual TLS on loopback: ITI-41, ITI-18, ITI-43, RPLC, ITI-57, and the
// simulator's rejections (each with the XDS error code the real registry gives).
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { DmpClient, type DmpClientConfig, type ClinicianIdentity } from '../../gateway/src/dmp/client.js';
import { DmpError } from '../../gateway/src/dmp/errors.js';
import { buildSubmission } from '../../gateway/src/dmp/xds-metadata.js';
import { isValidUid, newUid } from '../../gateway/src/dicom/uid.js';
import { buildVihf } from '../../gateway/src/dmp/vihf.js';
import { buildEnvelope, parseEnvelope, readFault, readRegistryResponse } from '../../gateway/src/dmp/soap.js';
import { encodeMtom, decodeSoapMessage } from '../../gateway/src/dmp/mtom.js';
import { ACTION, NS } from '../../gateway/src/dmp/xds-constants.js';
import { startDmpSimulator, type DmpSimulator } from '../../sandbox/dmp/simulator.js';
import { syntheticPublicationRecord, fakeKosPart10 } from '../helpers/publication-record.js';
import { dmpTestPki, type DmpTestPki } from '../helpers/dmp-pki.js';

const INS_XDS = '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH';
const clinician: ClinicianIdentity = {
  rpps: '810000000001',
  displayName: 'ALICE GENERALISTE',
  roles: [{ code: '10', codeSystem: '1.2.250.1.71.1.2.7', displayName: 'Medecin' }],
};

function config(sim: DmpSimulator, pki: DmpTestPki, over: Partial<DmpClientConfig> = {}): DmpClientConfig {
  return {
    endpoints: { registry: sim.registryUrl, repository: sim.repositoryUrl },
    tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.caPem },
    vihf: {
      signingCert: pki.signer.cert,
      signingKey: pki.signer.key,
      finess: '499700367909006',
      lpsName: 'DRIMbox',
      lpsVersion: '0.1.0',
      lpsHomologationId: 'HOMOLOGATION-TEST',
      sector: { code: 'SA07', codeSystem: '1.2.250.1.71.4.2.4' },
    },
    submitter: { sourceId: '1.2.250.1.999.1.1.8121', defaultAuthor: syntheticPublicationRecord().author },
    timeoutMs: 10_000,
    ...over,
  };
}

async function setup(t: { teardown: (fn: () => unknown) => void }) {
  const pki = await dmpTestPki();
  const sim = await startDmpSimulator({
    dataDir: mkdtempSync(join(tmpdir(), 'dmp-sim-')),
    tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.caPem },
    vihfTrustAnchors: [pki.caPem],
  });
  const client = new DmpClient(config(sim, pki));
  t.teardown(async () => {
    await client.close();
    await sim.close();
  });
  return { pki, sim, client };
}

/** Send a hand-made ITI-41 (to test what DmpClient never produces). */
async function rawIti41(sim: DmpSimulator, pki: DmpTestPki, mutate: { metadata?: (x: string) => string; assertion?: (x: string) => string; envelope?: (x: string) => string }) {
  const record = syntheticPublicationRecord();
  const built = buildSubmission({
    record,
    kos: { sopInstanceUid: newUid(), part10: fakeKosPart10() },
    submitter: { sourceId: '1.2.250.1.999.1.1.8121', submissionSetUid: newUid(), signatureUid: newUid() },
    signer: { certPem: pki.signer.cert, keyPem: pki.signer.key },
  });
  let assertion = buildVihf({
    system: { signingCertPem: pki.signer.cert, signingKeyPem: pki.signer.key, structureId: '1', lpsName: 'x', lpsVersion: '1', lpsHomologationId: 'h' },
    actor: { nameId: '899700367909', displayName: 'JEAN RADIO', roles: [{ code: '10', codeSystem: '1.2.250.1.71.1.2.7' }], sector: { code: 'SA07', codeSystem: '1.2.250.1.71.4.2.4' }, authMode: 'INDIRECTE' },
    patientId: INS_XDS,
  });
  if (mutate.assertion) assertion = mutate.assertion(assertion);
  const metadata = mutate.metadata ? mutate.metadata(built.submitObjectsRequest) : built.submitObjectsRequest;
  const body =
    `<xds:ProvideAndRegisterDocumentSetRequest xmlns:xds="${NS.xds}">${metadata}` +
    built.documents.map((d, i) => `<xds:Document id="${d.id}"><xop:Include xmlns:xop="${NS.xop}" href="cid:d${i}"/></xds:Document>`).join('') +
    `</xds:ProvideAndRegisterDocumentSetRequest>`;
  const envelope = buildEnvelope({ action: ACTION.iti41, to: sim.repositoryUrl, assertion, body });
  const m = encodeMtom(
    mutate.envelope ? mutate.envelope(envelope) : envelope,
    built.documents.map((d, i) => ({ contentId: `d${i}`, contentType: 'application/octet-stream', content: d.content })),
    ACTION.iti41,
  );
  const agent = new Agent({ connect: { cert: pki.client.cert, key: pki.client.key, ca: pki.caPem } });
  try {
    const res = await request(sim.repositoryUrl, { method: 'POST', dispatcher: agent, headers: { 'content-type': m.contentType }, body: m.body });
    const msg = decodeSoapMessage(Buffer.from(await res.body.arrayBuffer()), String(res.headers['content-type']));
    const env = parseEnvelope(msg.envelope);
    return { http: res.statusCode, fault: readFault(env.payload), response: env.payload?.localName === 'RegistryResponse' ? readRegistryResponse(env.payload) : undefined };
  } finally {
    await agent.close();
  }
}

t.test('a request carrying a DOCTYPE is refused before it is parsed', async (t) => {
  const { sim, pki } = await setup(t);
  const ok = await rawIti41(sim, pki, {});
  t.equal(ok.response?.status, 'Success', 'the same request without a DTD is accepted');
  const dtd = '<!DOCTYPE Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>';
  const r = await rawIti41(sim, pki, { envelope: (x) => x.replace(/^(<\?xml[^>]*\?>)?/, (decl) => decl + dtd) });
  t.equal(r.http, 400);
  t.match(r.fault, { code: 'Sender', reason: /document type declarations \(DOCTYPE\) and entities are not allowed/ });
});

t.test('publish, find, retrieve, replace, delete', async (t) => {
  const { sim, client } = await setup(t);
  const record = syntheticPublicationRecord();
  const kos = fakeKosPart10('v1');
  const kosUid = newUid();
  const pub = await client.provideAndRegister({ record, kos: { sopInstanceUid: kosUid, part10: kos } });
  t.equal(pub.status, 'Success');
  t.match(pub.entryUuids.kos, /^urn:uuid:[0-9a-f-]{36}$/, 'the DMP assigned the KOS entryUUID');
  t.match(pub.entryUuids.report!, /^urn:uuid:/, 'and the report entryUUID');
  t.equal(pub.kosUniqueId, kosUid);

  const found = await client.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician);
  t.equal(found.length, 1, 'FindDocuments IMG-KOS finds the KOS');
  const entry = found[0];
  t.equal(entry.entryUuid, pub.entryUuids.kos);
  t.equal(entry.status, 'Approved');
  t.equal(entry.mimeType, 'application/dicom');
  t.equal(entry.repositoryUniqueId, sim.repositoryUniqueId);
  t.ok(entry.referenceIds.some((r) => r.startsWith('1.2.250.1.999.1.1.8121.3.116^^^')), 'studyInstanceUID reference returned');
  t.ok(entry.eventCodes.some((c) => c.code === 'MR' && c.scheme === '1.2.250.1.213.1.1.5.618'));
  t.equal((await client.findDocuments({ patientId: INS_XDS, modalities: ['MR'] }, clinician)).length, 2, 'modality filter (KOS + CR)');
  t.equal((await client.findDocuments({ patientId: INS_XDS, modalities: ['CT'] }, clinician)).length, 0, 'other modality: none');
  const KOS_TYPE = [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }];
  t.equal((await client.findDocuments({ patientId: INS_XDS, typeCodes: KOS_TYPE, serviceStartFrom: '20240106' }, clinician)).length, 0, 'date filter excludes');
  t.equal((await client.findDocuments({ patientId: INS_XDS, typeCodes: KOS_TYPE, serviceStartFrom: '20240105', serviceStartTo: '20240106' }, clinician)).length, 1, 'date filter includes');
  const all = await client.findDocuments({ patientId: INS_XDS }, clinician);
  t.same(all.map((d) => d.typeCode?.code).sort(), ['18748-4', 'E1762', 'IMG-KOS']);

  const docs = await client.retrieveDocuments(
    [
      { repositoryUniqueId: entry.repositoryUniqueId!, documentUniqueId: kosUid },
      { repositoryUniqueId: entry.repositoryUniqueId!, documentUniqueId: pub.reportUniqueId! },
    ],
    { as: clinician, patientId: INS_XDS },
  );
  t.ok(docs[0].content.equals(kos), 'ITI-43 returns the KOS byte-identical');
  t.equal(docs[0].mimeType, 'application/dicom');
  t.ok(docs[1].content.equals(record.cda), 'and the CDA byte-identical');

  // correction: RPLC
  const v2 = syntheticPublicationRecord({ version: 2 });
  const kos2Uid = newUid();
  const pub2 = await client.provideAndRegister({ record: v2, kos: { sopInstanceUid: kos2Uid, part10: fakeKosPart10('v2') }, replaces: pub.entryUuids });
  const [old] = await client.getDocuments({ entryUuids: [pub.entryUuids.kos] }, clinician, INS_XDS);
  t.equal(old.status, 'Deprecated', 'replaced KOS is Deprecated');
  const [oldCr] = await client.getDocuments({ entryUuids: [pub.entryUuids.report!] }, clinician, INS_XDS);
  t.equal(oldCr.status, 'Deprecated', 'replaced report is Deprecated');
  const approved = await client.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician);
  t.same(approved.map((d) => d.uniqueId), [kos2Uid], 'only the new KOS is Approved');

  // RPLC of a non-approved entry is refused
  await t.rejects(
    client.provideAndRegister({ record: syntheticPublicationRecord({ version: 3 }), kos: { sopInstanceUid: newUid(), part10: fakeKosPart10('v3') }, replaces: { kos: pub.entryUuids.kos }, includeReport: false }),
    { code: 'XDSRegistryMetadataError', retryable: false, message: /not Approved/ },
  );
  await t.rejects(
    client.provideAndRegister({ record: syntheticPublicationRecord({ version: 4 }), kos: { sopInstanceUid: newUid(), part10: fakeKosPart10('v4') }, replaces: { kos: 'urn:uuid:00000000-0000-4000-8000-000000000000' }, includeReport: false }),
    { code: 'UnresolvedReferenceException' },
  );

  // withdrawal: ITI-57 Deleted
  t.same(await client.updateStatus(pub2.entryUuids.kos, 'Deleted', INS_XDS), { status: 'Success' });
  t.equal((await client.findDocuments({ patientId: INS_XDS, typeCodes: [{ code: 'IMG-KOS', scheme: '1.2.250.1.213.1.1.4.12' }] }, clinician)).length, 0, 'Deleted KOS hidden from Approved searches');
  const deleted = await client.findDocuments({ patientId: INS_XDS, status: ['Deleted'] }, clinician);
  t.same(deleted.map((d) => d.uniqueId), [kos2Uid]);
  await t.rejects(client.updateStatus(pub2.entryUuids.kos, 'Deleted', INS_XDS), { code: 'XDSMetadataUpdateOperationError' }, 'status must be the current one');
  await t.rejects(
    client.retrieveDocuments([{ repositoryUniqueId: sim.repositoryUniqueId, documentUniqueId: kos2Uid }], { as: clinician, patientId: INS_XDS }),
    { code: 'XDSDocumentUniqueIdError' },
  );

  // the sandbox view
  const res = await request(`${sim.url}/_sim/documents`, { dispatcher: new Agent({ connect: { cert: (await dmpTestPki()).client.cert, key: (await dmpTestPki()).client.key, ca: (await dmpTestPki()).caPem } }) });
  const list = (await res.body.json()) as { uniqueId: string; status: string }[];
  t.equal(list.find((d) => d.uniqueId === kos2Uid)?.status, 'Deleted');
});

t.test('UIDs made under a long root stay valid DICOM UIDs (at most 64 characters)', async (t) => {
  const { sim, pki } = await setup(t);
  const root = '1.2.250.1.999.1.1.8121.10.11'; // 28 characters, like a real FINESS-based root
  const base = config(sim, pki);
  const client = new DmpClient({ ...base, submitter: { ...base.submitter, uidRoot: root } });
  t.teardown(() => client.close());
  const pub = await client.provideAndRegister({ record: syntheticPublicationRecord(), kos: { sopInstanceUid: newUid(root), part10: fakeKosPart10() } });
  const agent = new Agent({ connect: { cert: pki.client.cert, key: pki.client.key, ca: pki.caPem } });
  t.teardown(() => agent.close());
  const list = (await (await request(`${sim.url}/_sim/documents`, { dispatcher: agent })).body.json()) as { uniqueId: string; mimeType: string }[];
  const made = [pub.submissionSetUid, ...list.filter((d) => d.uniqueId.startsWith(root + '.')).map((d) => d.uniqueId)];
  t.ok(made.length >= 3, 'the submission set, the KOS and the signature document');
  for (const uid of made) {
    t.ok(uid.startsWith(root + '.'), `${uid} is under the root`);
    t.ok(isValidUid(uid), `${uid} (${uid.length} characters) is a valid UID`);
  }
});

t.test('the simulator rejects what the ANS validators reject', async (t) => {
  const { pki, sim, client } = await setup(t);

  const bad = syntheticPublicationRecord();
  bad.patient.ins = { value: '12345', oid: '1.2.250.1.213.1.4.10' };
  await t.rejects(client.provideAndRegister({ record: bad, kos: { sopInstanceUid: newUid(), part10: fakeKosPart10() } }), { name: 'DmpError', code: 'XDSUnknownPatientId', retryable: false }, 'non-INS patient id');

  const uid = newUid();
  await client.provideAndRegister({ record: syntheticPublicationRecord(), kos: { sopInstanceUid: uid, part10: fakeKosPart10() }, includeReport: false });
  await t.rejects(
    client.provideAndRegister({ record: syntheticPublicationRecord(), kos: { sopInstanceUid: uid, part10: fakeKosPart10() }, includeReport: false }),
    { code: 'XDSDuplicateUniqueIdInRegistry' },
    'duplicate uniqueId',
  );

  const unknownType = await rawIti41(sim, pki, { metadata: (x) => x.replace('nodeRepresentation="IMG-KOS"', 'nodeRepresentation="IMG-XXX"') });
  t.equal(unknownType.response?.status, 'Failure');
  t.equal(unknownType.response?.errors[0]?.errorCode, 'XDSRegistryMetadataError');
  t.match(unknownType.response?.errors[0]?.codeContext, /typeCode IMG-XXX/);

  const noRefs = await rawIti41(sim, pki, { metadata: (x) => x.replace(/<Slot name="urn:ihe:iti:xds:2013:referenceIdList">.*?<\/Slot>/g, '') });
  t.equal(noRefs.response?.status, 'Failure');
  t.ok(noRefs.response?.errors.some((e) => e.errorCode === 'XDSRegistryMetadataError' && /referenceIdList/.test(e.codeContext)), 'missing referenceIdList');

  const wrongMime = await rawIti41(sim, pki, { metadata: (x) => x.replace('mimeType="application/dicom"', 'mimeType="application/pdf"') });
  t.ok(wrongMime.response?.errors.some((e) => /IMG-KOS must be application\/dicom/.test(e.codeContext)), 'IMG-KOS mimeType');

  const badSig = await rawIti41(sim, pki, { assertion: (a) => a.replace('<saml2:NameID>899700367909<', '<saml2:NameID>899700367900<') });
  t.equal(badSig.http, 400);
  t.same(badSig.fault && { code: badSig.fault.code, subcode: badSig.fault.subcode }, { code: 'soap:Sender', subcode: 'wsse:FailedCheck' }, 'tampered VIHF → SOAP fault');

  const ok = await rawIti41(sim, pki, {});
  t.equal(ok.response?.status, 'Success', 'the untouched raw request is accepted (the rejections above are the mutations)');

  // a VIHF signed by an untrusted authority, through the client
  const foreign = new DmpClient({ ...config(sim, pki), vihf: { ...config(sim, pki).vihf, signingCert: pki.foreignSigner.cert, signingKey: pki.foreignSigner.key } });
  t.teardown(() => foreign.close());
  await t.rejects(foreign.findDocuments({ patientId: INS_XDS }, clinician), { code: 'wsse:InvalidSecurityToken', retryable: false });

  // no trusted TLS client certificate → transport error, retryable
  const noTls = new DmpClient({ ...config(sim, pki), tls: { cert: pki.foreignSigner.cert, key: pki.foreignSigner.key, ca: pki.caPem } });
  t.teardown(() => noTls.close());
  const e = await noTls.findDocuments({ patientId: INS_XDS }, clinician).catch((x: unknown) => x);
  t.ok(e instanceof DmpError && e.code === 'transport' && e.retryable, 'mTLS refusal is a retryable transport error');
});
