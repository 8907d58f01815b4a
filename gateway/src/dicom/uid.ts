// DICOM UIDs: validity check and new UIDs, either `2.25.<uuid as integer>` (PS3.5 B.2) or under the
// box's own root.
import { randomUUID, randomBytes } from 'node:crypto';

const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

export function isValidUid(s: string): boolean {
  return s.length > 0 && s.length <= 64 && UID_RE.test(s);
}

/** A new unique UID: under `root` when given (root + '.' + random digits), else 2.25.<uuid>. */
export function newUid(root?: string): string {
  if (!root) return `2.25.${BigInt('0x' + randomUUID().replace(/-/g, '')).toString()}`;
  if (!isValidUid(root) || root.length > 60) throw new Error(`UID root "${root}" is not a valid UID prefix of at most 60 characters`);
  const room = 64 - root.length - 1;
  let digits = BigInt('0x' + randomBytes(16).toString('hex')).toString();
  digits = digits.replace(/^0+/, '') || '1';
  return `${root}.${digits.slice(0, Math.min(room, 39))}`;
}

// Storage SOP classes that are not images (content item COMPOSITE, not IMAGE): SR (88.*), presentation
// states (11.*), waveforms (9.*), encapsulated documents (104.*), RT non-image (481.2+), raw data, etc.
const NON_IMAGE = [
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.88\./,
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.11\./,
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.9\./,
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.104\./,
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.481\.[2-9]/,
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.66(\.|$)/,
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.67$/,
  /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.68\./,
];

const imageCache = new Map<string, boolean>();
export function isImageSopClass(sopClassUid: string): boolean {
  let v = imageCache.get(sopClassUid);
  if (v === undefined) {
    v = sopClassUid.startsWith('1.2.840.10008.5.1.4.1.1.') && !NON_IMAGE.some((re) => re.test(sopClassUid));
    if (imageCache.size < 1000) imageCache.set(sopClassUid, v);
  }
  return v;
}
