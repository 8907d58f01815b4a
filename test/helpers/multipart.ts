// Reads a multipart/related HTTP answer (DICOMweb WADO-RS) into memory, part by part, for assertions.
import type { Readable } from 'node:stream';
import { readMultipart, parseContentType } from '../../gateway/src/dicom/multipart.js';

export interface BufferedPart {
  /** header names in lower case */
  headers: Record<string, string>;
  data: Buffer;
}

/** Every part of the body, headers and bytes; rejects on a malformed or truncated body. */
export async function multipartParts(body: Readable, contentType: string | string[] | undefined): Promise<BufferedPart[]> {
  const boundary = parseContentType(String(contentType ?? '')).params.boundary;
  if (!boundary) throw new Error(`not a multipart answer (content-type: ${String(contentType)})`);
  const out: BufferedPart[] = [];
  for await (const part of readMultipart(body, boundary)) {
    const chunks: Buffer[] = [];
    for await (const c of part.body) chunks.push(c as Buffer);
    out.push({ headers: part.headers, data: Buffer.concat(chunks) });
  }
  return out;
}

/** The bytes of every part of the body. */
export async function parts(body: Readable, contentType: string | string[] | undefined): Promise<Buffer[]> {
  return (await multipartParts(body, contentType)).map((p) => p.data);
}
