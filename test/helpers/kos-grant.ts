// A source box's peer API serves only what a published KOS grants (deny by default). Tests of the
// peer API's streaming and transfer syntaxes record, as the outbox worker does after a DMP
// publication, a current KOS referencing the instances they ask for, and send its UID on every call.
import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';
import type { Box } from '../../gateway/src/box.js';
import { buildKos, type KosInstance } from '../../gateway/src/dicom/kos.js';
import { readInfo } from '../../gateway/src/dicom/part10.js';
import { KOS_HEADER } from '../../gateway/src/source/kos-access.js';
import { PublicationRepository } from '../../gateway/src/source/publication/repository.js';
import { syntheticPublicationRecord } from './publication-record.js';

let seq = 0;

/** Records a published, current KOS on `box` referencing the given Part 10 files (buffers or paths); its UID. */
export async function grantKos(box: Box, files: (Buffer | string)[]): Promise<string> {
  seq++;
  const instances: KosInstance[] = files.map((f) => readInfo(typeof f === 'string' ? readFileSync(f) : f)).map((i) => ({
    studyUid: i.studyInstanceUid, seriesUid: i.seriesInstanceUid, sopClassUid: i.sopClassUid!, sopInstanceUid: i.sopInstanceUid,
  }));
  const record = syntheticPublicationRecord({ studyInstanceUid: instances[0].studyUid, documentRoot: `1.2.250.1.999.1.1.8121.9.${Date.now()}.${seq}` });
  const kos = buildKos({ record, study: record.studies[0], instances, retrieveBaseUrl: `${box.peerUrl}/dicom-web`, retrieveLocationUid: box.config.box.retrieveLocationUid });
  const refs: Record<string, Record<string, string[]>> = {};
  for (const i of instances) ((refs[i.studyUid] ??= {})[i.seriesUid] ??= []).push(i.sopInstanceUid);
  const repo = new PublicationRepository(box.store);
  const { job } = await repo.enqueue({ kind: 'publish', idemKey: `grant|${kos.sopInstanceUid}`, setId: `grant-${seq}`, payload: {}, state: 'done' });
  const kosId = await repo.saveBuiltKos(job.id, {
    setId: `grant-${seq}`, sopInstanceUid: kos.sopInstanceUid, patientId: record.patient.ins.value, part10: kos.part10, refs,
    studies: Object.keys(refs).map((studyUid) => ({ studyUid, accession: '' })),
  });
  await repo.markPublished(job.id, kosId, { kos: `urn:uuid:grant-${seq}` });
  return kos.sopInstanceUid;
}

/** `agent` sending `KOS-SOPInstanceUID: kosUid` on every request. */
export function withKos(agent: Agent, kosUid: string): Dispatcher {
  return agent.compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: { ...(opts.headers as Record<string, string> | undefined), [KOS_HEADER]: kosUid } }, handler));
}
