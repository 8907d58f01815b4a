// A GET of a small signed document the box trusts only after verifying it (the allow-list, a CRL):
// 200 or an error, with timeouts and a size cap so a slow or hostile server cannot hold or fill it.
import { request, type Dispatcher } from 'undici';

export interface BoundedDownload {
  dispatcher?: Dispatcher;
  timeoutMs: number;
  maxBytes: number;
  /** named in the too-large error ("CRL", "list") */
  what: string;
  headers?: Record<string, string>;
}

/** The body of `url`; throws `HTTP <status>` on anything but 200, and when it exceeds maxBytes. */
export async function boundedDownload(url: string, o: BoundedDownload): Promise<Buffer> {
  const res = await request(url, { dispatcher: o.dispatcher, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs, headers: o.headers });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`HTTP ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body) {
    size += (c as Buffer).length;
    if (size > o.maxBytes) {
      res.body.destroy();
      throw new Error(`${o.what} larger than ${o.maxBytes} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
