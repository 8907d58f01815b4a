// The box's configuration: one JSON document, validated at start. Every key can be overridden by an
// environment variable DRIMBOX_<PATH> with "__" between levels, e.g. DRIMBOX_PEER__PORT=9443.

export type Role = 'source' | 'consumer';

export interface TlsFiles {
  cert: string;
  key: string;
  /** CA bundle that client (or server) certificates must chain to */
  ca: string;
}

export type PacsConfig =
  | { kind: 'dicomweb'; url: string; timeoutMs: number }
  | {
      kind: 'dimse';
      host: string;
      port: number;
      calledAet: string;
      callingAet: string;
      retrieve: 'c-get' | 'c-move';
      storeScpPort: number;
      timeoutMs: number;
    }
  | { kind: 'folder'; path: string };

export interface DrimboxConfig {
  box: {
    /** short name, used in logs and the allow-list enrolment */
    name: string;
    organization: string;
    /** root under which the box makes UIDs (KOS series/instances); "2.25" means UUID-derived */
    uidRoot: string;
    /** RetrieveLocationUID written into the KOS evidence: this box's identity as a source */
    retrieveLocationUid: string;
  };
  dataDir: string;
  roles: Role[];
  /** user-facing listener: viewer, contextual call, report links, admin */
  user: { host: string; port: number; publicUrl: string; tls: { cert: string; key: string } };
  /** peer listener: DICOMweb for other boxes, mutual TLS */
  peer: { host: string; port: number; publicUrl: string; tls: TlsFiles; allowedPeers: string[] };
  pacs: PacsConfig;
  hl7: { host: string; port: number; maxMessageBytes: number };
  admin: { token: string };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' };
}
