// Reads a series' instances through the session's DICOMweb root (WADO-RS series /metadata) and
// registers that metadata for the `wadors:` image loader. The series list is in dicom-json.ts.
import { wadors } from '@cornerstonejs/dicom-image-loader';
import { getJson } from './api.js';
import { str, nums, seriesMetadataUrl, type DicomJson } from './dicom-json.js';

export interface Instance {
  sopUid: string;
  imageId: string;
  number: number;
  meta: DicomJson;
}
export interface Series {
  studyUid: string;
  seriesUid: string;
  modality: string;
  description: string;
  number: number;
  instances: Instance[];
  /** image ids in display order (one per frame) */
  imageIds: string[];
  frameOfReferenceUid?: string;
  orientation?: number[];
}

/** The image a series opens on, and its thumbnail: the middle one. */
export const middleIndex = (s: Series): number => Math.floor((s.imageIds.length - 1) / 2);

/** Position along the slice normal, for sorting a stack from its geometry. */
function along(meta: DicomJson): number | undefined {
  const ipp = nums(meta, '00200032');
  const iop = nums(meta, '00200037');
  if (!ipp || !iop || iop.length < 6) return undefined;
  const n = [iop[1] * iop[5] - iop[2] * iop[4], iop[2] * iop[3] - iop[0] * iop[5], iop[0] * iop[4] - iop[1] * iop[3]];
  return ipp[0] * n[0] + ipp[1] * n[1] + ipp[2] * n[2];
}

export async function loadSeries(root: string, studyUid: string, seriesUid: string): Promise<Series> {
  const absRoot = new URL(root, location.href).href.replace(/\/$/, '');
  const metas = await getJson<DicomJson[]>(seriesMetadataUrl(root, studyUid, seriesUid), 'application/dicom+json');
  const images = metas.filter((m) => m['7FE00010'] !== undefined || m['00280010'] !== undefined);
  const withPos = images.map((meta) => ({ meta, pos: along(meta), number: Number(str(meta, '00200013') ?? 0) }));
  const allPos = withPos.every((w) => w.pos !== undefined);
  withPos.sort((a, b) => (allPos ? (a.pos! - b.pos!) : 0) || a.number - b.number);
  const instances: Instance[] = [];
  const imageIds: string[] = [];
  for (const { meta, number } of withPos) {
    const sopUid = str(meta, '00080018')!;
    const frames = Number(str(meta, '00280008') ?? 1) || 1;
    const base = `wadors:${absRoot}/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}/frames/`;
    for (let f = 1; f <= frames; f++) {
      const imageId = base + f;
      wadors.metaDataManager.add(imageId, meta as never);
      imageIds.push(imageId);
    }
    instances.push({ sopUid, imageId: base + '1', number, meta });
  }
  const first = images[0] ?? {};
  return {
    studyUid, seriesUid, instances, imageIds,
    modality: str(first, '00080060') ?? '',
    description: str(first, '0008103E') ?? '',
    number: Number(str(first, '00200011') ?? 0),
    frameOfReferenceUid: str(first, '00200052'),
    orientation: nums(first, '00200037'),
  };
}
