// What the consumer checks on every instance a source box sends before it is cached and served as
// part of a complete series: it is the instance the KOS names (patient, study, series, SOP UIDs), and
// it is whole (parses as Part 10; uncompressed pixel data as long as rows × columns × samples × bits ×
// frames; encapsulated pixel data closed by its sequence delimiter). A source that sends a file cut
// short inside a multipart it ends cleanly is caught here, not by the viewer's frame requests.
import { open } from 'node:fs/promises';
import dicomParser from 'dicom-parser';
import { inflateRawSync } from 'node:zlib';
import type { Part10Info } from '../dicom/part10.js';

/** What the KOS says an instance of this series must be. */
export interface KosExpectation {
  studyUid: string;
  seriesUid: string;
  sops: ReadonlySet<string>;
  /** the KOS patient's identifiers (INS, then its other patient IDs): an instance must carry one */
  patientIds: readonly string[];
}

/** The instance is not the one the KOS names: another patient, study or series. */
export class IdentityMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityMismatchError';
  }
}

/** Why an instance's header does not match the KOS, or undefined when it does. */
export function identityProblem(info: Pick<Part10Info, 'patientId' | 'studyInstanceUid' | 'seriesInstanceUid' | 'sopInstanceUid'>, k: KosExpectation): string | undefined {
  if (!k.sops.has(info.sopInstanceUid)) return `the source sent instance ${info.sopInstanceUid}, which the KOS does not reference in this series`;
  if (info.studyInstanceUid !== k.studyUid) return `instance ${info.sopInstanceUid} belongs to study ${info.studyInstanceUid}, not to the KOS's study ${k.studyUid}`;
  if (info.seriesInstanceUid !== k.seriesUid) return `instance ${info.sopInstanceUid} belongs to series ${info.seriesInstanceUid}, not to the KOS's series ${k.seriesUid}`;
  if (!k.patientIds.includes(info.patientId)) return `instance ${info.sopInstanceUid} carries a Patient ID that is none of the KOS patient's identifiers`;
  return undefined;
}

const HEAD = 1 << 20;
/** files without pixel data are parsed whole up to this size */
const MAX_WHOLE = 64 * 1024 * 1024;
const DEFLATED = '1.2.840.10008.1.2.1.99';
const NATIVE = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2']);
const SEQUENCE_DELIMITER = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);

function parse(u8: Uint8Array, untilPixelData: boolean): dicomParser.DataSet {
  const inflater = (arr: Uint8Array, position: number) => {
    const inflated = inflateRawSync(arr.subarray(position));
    const out = new Uint8Array(position + inflated.length);
    out.set(arr.subarray(0, position));
    out.set(inflated, position);
    return out;
  };
  return dicomParser.parseDicom(u8, untilPixelData ? { untilTag: 'x7fe00010', inflater } : { inflater });
}

/** Why a cached file is not a whole Part 10 instance, or undefined when it is. */
export async function completenessProblem(path: string, size: number, transferSyntaxUid: string): Promise<string | undefined> {
  const fh = await open(path, 'r');
  try {
    const read = async (pos: number, len: number) => {
      const b = Buffer.allocUnsafe(len);
      const { bytesRead } = await fh.read(b, 0, len, pos);
      return b.subarray(0, bytesRead);
    };
    const head = await read(0, Math.min(size, HEAD));
    let ds: dicomParser.DataSet;
    try {
      ds = parse(head, true);
    } catch (e) {
      if (head.length >= size) return `not a readable DICOM file (${describe(e)})`;
      ds = undefined as unknown as dicomParser.DataSet;
    }
    const pixel = ds?.elements.x7fe00010;
    if (!pixel) {
      // no pixel data in the first bytes: the file must parse whole (SR, PDF, huge headers)
      if (size > MAX_WHOLE) return undefined;
      try {
        const whole = parse(await read(0, size), false);
        return whole.elements.x7fe00010 ? pixelProblem(whole, whole.elements.x7fe00010, size, transferSyntaxUid, await read(Math.max(0, size - 8), 8)) : undefined;
      } catch (e) {
        return `not a readable DICOM file (${describe(e)})`;
      }
    }
    if (transferSyntaxUid === DEFLATED) return undefined; // offsets are in the inflated stream
    return pixelProblem(ds, pixel, size, transferSyntaxUid, await read(Math.max(0, size - 8), 8));
  } finally {
    await fh.close();
  }
}

function pixelProblem(ds: dicomParser.DataSet, pixel: dicomParser.Element, size: number, ts: string, tail: Buffer): string | undefined {
  if (pixel.length === 0xffffffff || pixel.hadUndefinedLength) {
    return tail.equals(SEQUENCE_DELIMITER) ? undefined : `the file ends before its encapsulated pixel data is closed (${size} bytes)`;
  }
  if (pixel.dataOffset + pixel.length > size) return `the file ends inside its pixel data (${size} bytes, ${pixel.dataOffset + pixel.length} expected)`;
  if (!NATIVE.has(ts)) return undefined;
  const rows = ds.uint16('x00280010') ?? 0;
  const cols = ds.uint16('x00280011') ?? 0;
  const samples = ds.uint16('x00280002') ?? 1;
  const bits = ds.uint16('x00280100') ?? 0;
  const frames = Number.parseInt(ds.string('x00280008') ?? '1', 10) || 1;
  const expected = Math.ceil((rows * cols * samples * frames * bits) / 8);
  if (pixel.length < expected) return `pixel data holds ${pixel.length} bytes, ${rows}×${cols}×${samples}×${bits} bits × ${frames} frame(s) need ${expected}`;
  return undefined;
}

function describe(e: unknown): string {
  return typeof e === 'string' ? e : (e as Error)?.message ?? String(e);
}
