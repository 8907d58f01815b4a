// The one interface every PACS adapter implements (DICOMweb, DIMSE, local folder store).
// Retrieval is streamed: a part's body must be consumed (or destroyed) before the next part is read.
import type { Readable } from 'node:stream';

/** DICOM JSON (PS3.18 F.2) dataset: tag "GGGGEEEE" → { vr, Value?, BulkDataURI?, InlineBinary? } */
export type DicomJson = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

/** QIDO-style matching keys: attribute keyword or tag → value (DICOM matching rules). */
export type QueryKeys = Record<string, string>;

export interface QueryOptions {
  limit?: number;
  offset?: number;
  /** extra attributes to return (keywords or tags) */
  includeField?: string[];
  fuzzy?: boolean;
  signal?: AbortSignal;
}

/** What to retrieve: a study, one of its series, or one instance. */
export interface DicomRef {
  study: string;
  series?: string;
  instance?: string;
}

export interface RetrieveOptions {
  /**
   * Transfer syntaxes the caller accepts, most preferred first. '*' means "as stored".
   * The adapter answers each instance in the stored syntax when it is acceptable, else in the first
   * acceptable syntax it can transcode to; it throws NotAcceptableError when it can do neither.
   */
  transferSyntaxes: string[];
  signal?: AbortSignal;
}

/** One Part 10 instance coming out of the PACS. */
export interface InstancePart {
  transferSyntaxUid: string;
  sopInstanceUid?: string;
  /** byte length when known up front */
  length?: number;
  /** the Part 10 bytes (with preamble + meta header) */
  body: Readable;
}

/** One frame (or all requested frames in order) of pixel data. */
export interface FramePart {
  /** media type of the frame, e.g. application/octet-stream, image/jls, image/jp2 */
  contentType: string;
  transferSyntaxUid: string;
  body: Readable;
}

export interface StoreResult {
  stored: { sopInstanceUid: string; sopClassUid: string }[];
  failed: { sopInstanceUid?: string; reason: string }[];
}

export interface Pacs {
  readonly kind: 'dicomweb' | 'dimse' | 'folder';
  /** liveness check: C-ECHO or a cheap QIDO; throws when the PACS is unreachable */
  echo(signal?: AbortSignal): Promise<void>;
  findStudies(keys: QueryKeys, opts?: QueryOptions): Promise<DicomJson[]>;
  findSeries(study: string | undefined, keys: QueryKeys, opts?: QueryOptions): Promise<DicomJson[]>;
  findInstances(study: string | undefined, series: string | undefined, keys: QueryKeys, opts?: QueryOptions): Promise<DicomJson[]>;
  /** Part 10 instances of a study/series/instance, streamed one after the other. */
  retrieve(ref: DicomRef, opts: RetrieveOptions): AsyncIterable<InstancePart>;
  /** Pixel data of the given 1-based frame numbers of one instance. */
  retrieveFrames(ref: Required<DicomRef>, frames: number[], opts: RetrieveOptions): AsyncIterable<FramePart>;
  /** DICOM JSON metadata (bulk data left out or as BulkDataURI relative to the instance). */
  metadata(ref: DicomRef, signal?: AbortSignal): Promise<DicomJson[]>;
  /** Store Part 10 instances (C-STORE / STOW-RS / file copy). */
  store(instances: AsyncIterable<Buffer | Readable>, signal?: AbortSignal): Promise<StoreResult>;
  close(): Promise<void>;
}

/** The PACS could not be reached, or failed while answering. Maps to 502/504. */
export class PacsUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PacsUnavailableError';
  }
}

/** The PACS did not answer in time (connect, first byte, or an idle gap). Maps to 504. */
export class PacsTimeoutError extends PacsUnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PacsTimeoutError';
  }
}

/** Nothing found for a DicomRef (or a frame number beyond the instance's frames). Maps to 404. */
export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** None of the accepted transfer syntaxes can be delivered. Maps to 406. */
export class NotAcceptableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotAcceptableError';
  }
}
