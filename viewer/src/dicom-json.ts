// DICOM JSON reading and the study's series list (QIDO-RS): kept apart from the Cornerstone loader so
// the viewer's small entry can fetch them before the large rendering bundle is evaluated.
import { getJson } from './api.js';

export type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

export function str(ds: DicomJson, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && 'Alphabetic' in (v as object)) return (v as { Alphabetic: string }).Alphabetic;
  return String(v);
}
export function nums(ds: DicomJson, tag: string): number[] | undefined {
  const v = ds[tag]?.Value;
  return v ? v.map(Number) : undefined;
}
export function strs(ds: DicomJson, tag: string): string[] {
  return (ds[tag]?.Value ?? []).map(String);
}
export function seq(ds: DicomJson, tag: string): DicomJson[] {
  return (ds[tag]?.Value ?? []) as DicomJson[];
}

export interface SeriesRow { seriesUid: string; modality: string; description: string; number: number; count: number }

export const seriesListUrl = (root: string, studyUid: string) => `${root}/studies/${studyUid}/series`;
export const seriesMetadataUrl = (root: string, studyUid: string, seriesUid: string) => `${root}/studies/${studyUid}/series/${seriesUid}/metadata`;

/** Image series in display order (key objects, SR and presentation states are not shown). */
export function seriesRows(rows: DicomJson[]): SeriesRow[] {
  return rows
    .map((r) => ({
      seriesUid: str(r, '0020000E') ?? '',
      modality: str(r, '00080060') ?? '',
      description: str(r, '0008103E') ?? '',
      number: Number(str(r, '00200011') ?? 0),
      count: Number(str(r, '00201209') ?? 0),
    }))
    .filter((s) => s.seriesUid && s.modality !== 'KO' && s.modality !== 'SR' && s.modality !== 'PR')
    .sort((a, b) => a.number - b.number);
}

export async function listSeries(root: string, studyUid: string): Promise<SeriesRow[]> {
  return seriesRows(await getJson<DicomJson[]>(seriesListUrl(root, studyUid), 'application/dicom+json'));
}
