// Window presets offered for an image: the CT ones only on CT (Hounsfield units); for other modalities
// the windows the image itself carries (VOI LUT module) and an automatic window from its histogram.
import { metaData, type Types } from '@cornerstonejs/core';
import { t } from './i18n.js';

export interface Preset { key: string; label: string; voi: { ww: number; wc: number } | null }

const CT: Preset[] = [
  { key: 'soft', label: t.presetNames.soft, voi: { ww: 400, wc: 40 } },
  { key: 'lung', label: t.presetNames.lung, voi: { ww: 1500, wc: -600 } },
  { key: 'bone', label: t.presetNames.bone, voi: { ww: 2000, wc: 300 } },
  { key: 'brain', label: t.presetNames.brain, voi: { ww: 80, wc: 40 } },
];

/** The presets for the image shown (`default` first: the image's own initial window). */
export function presetsFor(modality: string | undefined, image: Types.IImage | undefined): Preset[] {
  const out: Preset[] = [{ key: 'default', label: t.presetNames.default, voi: null }];
  if (modality === 'CT') return out.concat(CT);
  if (!image) return out;
  const voi = metaData.get('voiLutModule', image.imageId) as { windowCenter?: number | number[]; windowWidth?: number | number[]; voiLUTFunction?: string; windowCenterAndWidthExplanation?: string | string[] } | undefined;
  const arr = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const centres = arr(voi?.windowCenter).map(Number), widths = arr(voi?.windowWidth).map(Number);
  const names = arr(voi?.windowCenterAndWidthExplanation);
  centres.forEach((wc, i) => {
    const ww = widths[i];
    if (Number.isFinite(wc) && ww > 0) out.push({ key: `image-${i}`, label: t.imageWindow(i + 1, names[i]), voi: { ww, wc } });
  });
  const auto = autoWindow(image);
  if (auto) out.push({ key: 'auto', label: t.autoWindow, voi: auto });
  return out;
}

/**
 * Window from the image's histogram: the 1st to 99th percentile of its modality values, so a few
 * saturated or padding pixels do not flatten the contrast.
 */
export function autoWindow(image: Types.IImage): { ww: number; wc: number } | undefined {
  const px = image.getPixelData();
  if (!px?.length || (image.numberOfComponents ?? 1) > 1) return undefined;
  const scaled = !!image.preScale?.scaled;
  const slope = scaled ? 1 : image.slope ?? 1, intercept = scaled ? 0 : image.intercept ?? 0;
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < px.length; i++) { const v = px[i]; if (v < min) min = v; if (v > max) max = v; }
  if (!(max > min)) return undefined;
  const bins = 4096, hist = new Uint32Array(bins), k = (bins - 1) / (max - min);
  for (let i = 0; i < px.length; i++) hist[Math.floor((px[i] - min) * k)]++;
  const at = (q: number) => { let acc = 0; const target = q * px.length; for (let b = 0; b < bins; b++) { acc += hist[b]; if (acc >= target) return min + b / k; } return max; };
  const lo = at(0.01) * slope + intercept, hi = at(0.99) * slope + intercept;
  if (!(hi > lo)) return undefined;
  return { ww: hi - lo, wc: (hi + lo) / 2 };
}
