// pino JSON logs with patient data kept out: query strings (QIDO keys such as PatientName), tokens
// and identity fields are never written. Who saw what goes to the audit table instead.
import pino, { type Logger, type LoggerOptions } from 'pino';

const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["kos-sopinstanceuid"]',
  'res.headers["set-cookie"]',
  '*.patientId', '*.patientName', '*.ins', '*.ipp', '*.birthDate', '*.birthName', '*.token', '*.accessToken', '*.password',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    serializers: {
      req: (req: { method?: string; url?: string; id?: string }) => ({ id: req.id, method: req.method, path: (req.url ?? '').split('?')[0] }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
  };
}

export function createLogger(level = 'info', name = 'drimbox'): Logger {
  return pino({ ...loggerOptions(level), name });
}
