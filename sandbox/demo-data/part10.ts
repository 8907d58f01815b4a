// Writes a naturalized dataset as a Part 10 file with dcmjs (Explicit VR Little Endian).
import dcmjs from 'dcmjs';
import { createHash } from 'node:crypto';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;
const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1467.1';

export function writePart10(dataset: Record<string, unknown>, transferSyntaxUid = '1.2.840.10008.1.2.1'): Buffer {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: transferSyntaxUid,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: 'DRIMBOX_DEMO',
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write({ allowInvalidVRLength: true }));
}

/** Deterministic 2.25 UID from a seed string (same inputs → same UIDs). */
export function seededUid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex').slice(0, 32);
  return `2.25.${BigInt(`0x${h}`).toString()}`;
}
