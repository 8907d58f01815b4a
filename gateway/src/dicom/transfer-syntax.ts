// Transfer syntax UIDs, which ones carry encapsulated (compressed) pixel data, and the media type a
// frame has in each syntax (PS3.18 8.7.3.5) — used for WADO-RS frames and content negotiation.

export const TS = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
  JpegBaseline: '1.2.840.10008.1.2.4.50',
  JpegExtended: '1.2.840.10008.1.2.4.51',
  JpegLossless: '1.2.840.10008.1.2.4.57',
  JpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  JpegLsLossless: '1.2.840.10008.1.2.4.80',
  JpegLsNearLossless: '1.2.840.10008.1.2.4.81',
  Jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  Jpeg2000: '1.2.840.10008.1.2.4.91',
  Jpeg2000Part2Lossless: '1.2.840.10008.1.2.4.92',
  Jpeg2000Part2: '1.2.840.10008.1.2.4.93',
  Mpeg2: '1.2.840.10008.1.2.4.100',
  Mpeg4: '1.2.840.10008.1.2.4.102',
  Hevc: '1.2.840.10008.1.2.4.107',
  RleLossless: '1.2.840.10008.1.2.5',
  HtJ2kLossless: '1.2.840.10008.1.2.4.201',
  HtJ2kLosslessRpcl: '1.2.840.10008.1.2.4.202',
  HtJ2k: '1.2.840.10008.1.2.4.203',
} as const;

/** "as stored" in an accepted-syntaxes list */
export const ANY_TRANSFER_SYNTAX = '*';

const NATIVE = new Set<string>([
  TS.ImplicitVRLittleEndian, TS.ExplicitVRLittleEndian, TS.DeflatedExplicitVRLittleEndian, TS.ExplicitVRBigEndian,
]);

/** Pixel data is encapsulated (fragments) rather than native, i.e. the syntax is compressed. */
export function isEncapsulated(uid: string): boolean {
  return !NATIVE.has(uid);
}

/** Alias kept for readability at call sites that think in "compressed" terms. */
export const isCompressed = isEncapsulated;

export function isImplicitVr(uid: string): boolean {
  return uid === TS.ImplicitVRLittleEndian;
}

export function isBigEndian(uid: string): boolean {
  return uid === TS.ExplicitVRBigEndian;
}

const FRAME_MEDIA_TYPE: Record<string, string> = {
  [TS.JpegBaseline]: 'image/jpeg',
  [TS.JpegExtended]: 'image/jpeg',
  [TS.JpegLossless]: 'image/jpeg',
  [TS.JpegLosslessSV1]: 'image/jpeg',
  [TS.JpegLsLossless]: 'image/jls',
  [TS.JpegLsNearLossless]: 'image/jls',
  [TS.Jpeg2000Lossless]: 'image/jp2',
  [TS.Jpeg2000]: 'image/jp2',
  [TS.Jpeg2000Part2Lossless]: 'image/jpx',
  [TS.Jpeg2000Part2]: 'image/jpx',
  [TS.RleLossless]: 'image/dicom-rle',
  [TS.Mpeg2]: 'video/mpeg',
  [TS.Mpeg4]: 'video/mp4',
  [TS.Hevc]: 'video/H265',
  [TS.HtJ2kLossless]: 'image/jphc',
  [TS.HtJ2kLosslessRpcl]: 'image/jphc',
  [TS.HtJ2k]: 'image/jphc',
};

/** Media type of one frame of pixel data in the given transfer syntax. */
export function frameMediaType(uid: string): string {
  return FRAME_MEDIA_TYPE[uid] ?? 'application/octet-stream';
}

/** Transfer syntaxes whose frames are served as `media type; transfer-syntax=uid`. */
export function frameContentType(uid: string): string {
  return `${frameMediaType(uid)}; transfer-syntax=${uid}`;
}

/**
 * The syntax to deliver for an instance stored as `stored`, given the caller's accepted list
 * (most preferred first, '*' = as stored): the stored one when acceptable, else undefined (the caller
 * must transcode to one of `accepted`).
 */
export function storedIsAcceptable(stored: string, accepted: string[]): boolean {
  return accepted.length === 0 || accepted.includes(ANY_TRANSFER_SYNTAX) || accepted.includes(stored);
}

/** Syntaxes any DICOM toolkit (and Orthanc without plugins) can transcode to from anything it decodes. */
export const UNCOMPRESSED_SYNTAXES: readonly string[] = [TS.ExplicitVRLittleEndian, TS.ImplicitVRLittleEndian];
