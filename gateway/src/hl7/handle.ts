// Glue between the MLLP listener and the publication queue: parse, hand over, acknowledge.
// AA is sent only after `accept` resolved (the job is durably stored); any refusal becomes a NACK.
import { buildAck } from './ack.js';
import { parseHl7, type Hl7Message } from './message.js';
import { parsePublicationMessage, type PublicationMessage } from './publication-message.js';
import { Hl7Rejection } from './rejection.js';

export interface HandleOptions {
  application?: string;
  facility?: string;
  /** called with unexpected errors from `accept` (not with rejections); never given patient data by us */
  onError?: (err: unknown) => void;
}

export async function handleHl7(
  raw: string,
  accept: (msg: PublicationMessage) => Promise<void>,
  opts: HandleOptions = {},
): Promise<string> {
  const base = { application: opts.application, facility: opts.facility };
  let parsed: Hl7Message | undefined;
  try {
    parsed = parseHl7(raw);
    const msg = parsePublicationMessage(parsed);
    await accept(msg);
    return buildAck({ ...base, original: parsed, code: 'AA' });
  } catch (e) {
    if (e instanceof Hl7Rejection) {
      return buildAck({ ...base, original: parsed, code: e.code, error: { errorCode: e.errorCode, location: e.location, message: e.message } });
    }
    opts.onError?.(e);
    return buildAck({
      ...base, original: parsed, code: 'AE',
      error: { errorCode: 207, message: 'The DRIMbox could not record this report for publication because of an internal problem; it was NOT accepted. Please send it again later.' },
    });
  }
}

/** A NACK for bytes that could not even be taken as a message (framing, size): best effort on the MSH. */
export function frameNack(raw: string, message: string, errorCode: 100 | 207 = 100, opts: HandleOptions = {}): string {
  let original: Hl7Message | undefined;
  try {
    original = parseHl7(raw);
  } catch {
    original = undefined;
  }
  return buildAck({ application: opts.application, facility: opts.facility, original, code: 'AR', error: { errorCode, message } });
}
