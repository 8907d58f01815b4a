// The text of a measurement, in French, for its label on the image and its line in the side panel.
// Values come from Cornerstone's own statistics (cachedStats), in its calibrated units.
import { cache, utilities as csUtils } from '@cornerstonejs/core';
import { t } from './i18n.js';
import { isDetectorCalibrated } from './cs.js';

/** Cornerstone's names of the measurement tools this viewer uses */
export const MEASURE_TOOLS = {
  length: 'Length', angle: 'Angle', cobb: 'CobbAngle', ellipse: 'EllipticalROI', rect: 'RectangleROI',
  probe: 'Probe', bidir: 'Bidirectional', arrow: 'ArrowAnnotate',
} as const;

type Stats = Record<string, unknown>;
interface Data { cachedStats?: Record<string, Stats>; label?: string }

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const fmt = (v: number) => String(csUtils.roundNumber(v)).replace('.', ',');
/** the unit as shown: Cornerstone's unit without its calibration suffix, "HU" in French */
function unit(u: unknown, imageId?: string): string {
  const base = String(u ?? '').split(' ')[0].replace(/^HU$/, 'UH');
  return imageId && isDetectorCalibrated(imageId) && base.startsWith('mm') ? `${base} (détecteur)` : base;
}

/** An annotation's statistics: the first target that has numbers (a target may still hold placeholders). */
function statsOf(data: Data): Stats | undefined {
  const all = Object.values(data.cachedStats ?? {});
  return all.find((x) => Object.values(x).some(num)) ?? all[0];
}

/**
 * The probe's value when Cornerstone 5.14 leaves it out: on a stack it looks the pixel up at depth
 * "current image index" in the single image's voxels, which has one slice. Read at the same (i, j)
 * of the referenced image, in modality units.
 */
function stackPixel(imageId: string | undefined, index: unknown): number | undefined {
  const image = imageId ? cache.getImage(imageId) : undefined;
  if (!image || !Array.isArray(index)) return undefined;
  const [i, j] = index as number[];
  if (!(i >= 0 && j >= 0 && i < image.columns && j < image.rows)) return undefined;
  const raw = Number(image.getPixelData()[j * image.columns + i]);
  return image.preScale?.scaled ? raw : raw * (image.slope ?? 1) + (image.intercept ?? 0);
}

export function measureLines(toolName: string, data: Data, imageId?: string): string[] {
  const s = statsOf(data);
  switch (toolName) {
    case MEASURE_TOOLS.arrow: return data.label ? [data.label] : [];
    case MEASURE_TOOLS.length: return s && num(s.length) ? [`${fmt(s.length)} ${unit(s.unit, imageId)}`] : [];
    case MEASURE_TOOLS.angle:
    case MEASURE_TOOLS.cobb: return s && num(s.angle) ? [`${fmt(s.angle)}°`] : [];
    case MEASURE_TOOLS.probe: {
      const v = s ? (num(s.value) ? s.value : stackPixel(imageId, s.index)) : undefined;
      return s && num(v) ? [`${t.stat.value} : ${fmt(v)} ${unit(s.modalityUnit)}`] : [];
    }
    case MEASURE_TOOLS.bidir: return s && num(s.length) && num(s.width)
      ? [`${t.stat.long} : ${fmt(s.length)} ${unit(s.unit, imageId)}`, `${t.stat.short} : ${fmt(s.width)} ${unit(s.unit, imageId)}`] : [];
    case MEASURE_TOOLS.ellipse:
    case MEASURE_TOOLS.rect: {
      if (!s) return [];
      const mu = unit(s.modalityUnit);
      const out: string[] = [];
      if (num(s.area)) out.push(`${t.stat.area} : ${fmt(s.area)} ${unit(s.areaUnit, imageId)}`);
      if (num(s.mean)) out.push(`${t.stat.mean} : ${fmt(s.mean)} ${mu}`);
      if (num(s.stdDev)) out.push(`${t.stat.sd} : ${fmt(s.stdDev)} ${mu}`);
      if (num(s.min) && num(s.max)) out.push(`${t.stat.min} / ${t.stat.max} : ${fmt(s.min)} / ${fmt(s.max)} ${mu}`);
      return out;
    }
    default: return [];
  }
}

/** What a measurement's numbers mean, when they are not plain mm at the patient. */
export function calibrationNote(toolName: string, data: Data, imageId?: string): string | undefined {
  const s = statsOf(data);
  const u = String(s?.unit ?? s?.areaUnit ?? '');
  if (!s || toolName === MEASURE_TOOLS.probe || toolName === MEASURE_TOOLS.arrow) return undefined;
  if (u.startsWith('px')) return t.uncalibrated;
  if (imageId && isDetectorCalibrated(imageId) && u.startsWith('mm')) return t.detectorPlane;
  return undefined;
}
