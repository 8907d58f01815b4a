// Typed DMP failures: the outbox decides whether to retry from `retryable` alone.

export interface RegistryErrorDetail {
  errorCode: string;          // e.g. XDSRegistryMetadataError
  codeContext: string;
  severity: string;
  location?: string;
}

export class DmpError extends Error {
  /** XDS error code (first RegistryError), SOAP fault subcode, or 'transport' / 'protocol'. */
  readonly code: string;
  readonly retryable: boolean;
  readonly details: RegistryErrorDetail[];
  readonly httpStatus?: number;

  constructor(o: { code: string; message: string; retryable: boolean; details?: RegistryErrorDetail[]; httpStatus?: number; cause?: unknown }) {
    super(o.message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'DmpError';
    this.code = o.code;
    this.retryable = o.retryable;
    this.details = o.details ?? [];
    this.httpStatus = o.httpStatus;
  }
}

/** XDS error codes that describe a temporary condition of the registry/repository. */
const RETRYABLE_XDS = new Set([
  'XDSRegistryBusy',
  'XDSRepositoryBusy',
  'XDSRegistryOutOfResources',
  'XDSRepositoryOutOfResources',
  'XDSRegistryNotAvailable',
  'XDSRegistryError',
  'XDSRepositoryError',
]);

export function isRetryableXdsCode(code: string): boolean {
  return RETRYABLE_XDS.has(code) || code === 'transport';
}
