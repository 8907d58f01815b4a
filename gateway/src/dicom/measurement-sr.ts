// The measurement report a viewer sends with an import: a DICOM SR (Enhanced, Comprehensive or
// Comprehensive 3D) built on TID 1500, of the exam being imported. Pure checks on the Part 10 bytes.
import dicomParser from 'dicom-parser';
import { readMeta } from './part10.js';

const SR_CLASSES = new Set(['1.2.840.10008.5.1.4.1.1.88.22', '1.2.840.10008.5.1.4.1.1.88.33', '1.2.840.10008.5.1.4.1.1.88.34']);
export const isSrSopClass = (uid: string) => SR_CLASSES.has(uid);

/** Why `part10` is not a TID 1500 measurement report of `studyUid` (undefined: it is one). */
export function measurementReportProblem(part10: Buffer, studyUid: string): string | undefined {
  let meta;
  try { meta = readMeta(part10); } catch (e) { return (e as Error).message; }
  if (!meta) return 'truncated Part 10 file';
  if (!isSrSopClass(meta.sopClassUid)) return `SOP class ${meta.sopClassUid} is not a structured report`;
  let ds;
  try { ds = dicomParser.parseDicom(new Uint8Array(part10.buffer, part10.byteOffset, part10.byteLength)); } catch { return 'unreadable DICOM dataset'; }
  if (ds.string('x0020000d') !== studyUid) return 'the report belongs to another study';
  const template = ds.elements.x0040a504?.items?.[0]?.dataSet?.string('x0040db00');
  if (template !== '1500') return 'the report is not a TID 1500 measurement report';
  return undefined;
}
