// A typed refusal of an HL7 message: becomes the MSA-1 code and the ERR segment of the NACK.
// errorCode follows HL7 table 0357 (message error condition codes).

export type Hl7ErrorCode = 100 | 101 | 102 | 103 | 200 | 205 | 207;

export const ERROR_TEXT: Record<Hl7ErrorCode, string> = {
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  205: 'Duplicate key identifier',
  207: 'Application internal error',
};

export class Hl7Rejection extends Error {
  readonly code: 'AE' | 'AR';
  readonly errorCode: Hl7ErrorCode;
  /** ERR-2 error location, e.g. `PID^1^3` (segment^sequence^field) or `MSH` */
  readonly location: string;

  constructor(opts: { code?: 'AE' | 'AR'; errorCode: Hl7ErrorCode; location?: string; message: string }) {
    super(opts.message);
    this.name = 'Hl7Rejection';
    this.code = opts.code ?? 'AE';
    this.errorCode = opts.errorCode;
    this.location = opts.location ?? '';
  }
}

export function isHl7Rejection(e: unknown): e is Hl7Rejection {
  return e instanceof Hl7Rejection;
}
