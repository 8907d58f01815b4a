// Whether a series can be reconstructed in other planes (pure): CT or MR, one frame per instance,
// at least 3 parallel slices evenly spaced. Returns the reason in French when it cannot.
import { t } from './i18n.js';
import { nums, type DicomJson } from './dicom-json.js';

export function mprProblem(s: { modality: string; imageIds: string[]; instances: { meta: DicomJson }[] }): string | undefined {
  if (s.modality !== 'CT' && s.modality !== 'MR') return t.mprNotCtMr;
  if (s.imageIds.length <= 1) return t.mprSingle;
  if (s.imageIds.length < 3) return t.mprTooFew;
  if (s.instances.length !== s.imageIds.length) return t.mprNoGeometry; // multi-frame: no per-frame positions here
  const iops = s.instances.map((i) => nums(i.meta, '00200037'));
  const ipps = s.instances.map((i) => nums(i.meta, '00200032'));
  if (iops.some((o) => !o || o.length < 6) || ipps.some((p) => !p || p.length < 3)) return t.mprNoGeometry;
  const iop = iops[0]!;
  if (iops.some((o) => o!.some((v, k) => Math.abs(v - iop[k]) > 1e-3))) return t.mprOblique;
  const n = [iop[1] * iop[5] - iop[2] * iop[4], iop[2] * iop[3] - iop[0] * iop[5], iop[0] * iop[4] - iop[1] * iop[3]];
  const pos = ipps.map((p) => p![0] * n[0] + p![1] * n[1] + p![2] * n[2]).sort((a, b) => a - b);
  const gaps = pos.slice(1).map((p, i) => p - pos[i]);
  const mean = (pos[pos.length - 1] - pos[0]) / gaps.length;
  if (!(mean > 1e-3) || gaps.some((g) => Math.abs(g - mean) > Math.max(0.1 * mean, 0.01))) return t.mprIrregular;
  return undefined;
}
