// The box's configuration: one JSON document, validated at start. Every key can be overridden by an
// environment variable DRIMBOX_<PATH> with "__" between levels, e.g. DRIMBOX_PEER__PORT=9443.

export type Role = 'source' | 'consumer';

/** Revocation of peer certificates: CRLs issued by a `peer.tls.ca` certificate (files, http(s) URLs). */
export interface PeerRevocation {
  crlFiles: string[];
  crlUrls: string[];
  crlRefreshMinutes: number;
}

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
  /** where the box's state lives: `sqlite:PATH` (one instance) or `postgres://…` (several instances share it) */
  database: { url: string };
  roles: Role[];
  /** user-facing listener: viewer, contextual call, report links, admin */
  user: {
    host: string; port: number; publicUrl: string; tls: { cert: string; key: string };
    /** origins (https://dpi.example) of the DPI/RIS whose contextual calls open at once; any other asks the clinician first */
    allowedCallOrigins: string[];
  };
  /** peer listener: DICOMweb for other boxes, mutual TLS */
  peer: { host: string; port: number; publicUrl: string; tls: TlsFiles & PeerRevocation; allowedPeers: string[] };
  pacs: PacsConfig;
  /** MLLP listener for the RIS: required with the source role, absent otherwise */
  hl7?: Hl7Config;
  admin: { token: string };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' };
  /** the DMP (XDS.b) this box publishes to and searches; required for publication */
  dmp?: {
    registryUrl: string;
    repositoryUrl: string;
    /** CA that issued the DMP's server certificate; the box authenticates with its peer certificate */
    ca: string;
    /** also publish the CDA report (off when the RIS publishes it itself) */
    includeReport: boolean;
    finess: string;
    /** the box's OID: XDS sourceId */
    sourceId: string;
    lpsName: string;
    lpsVersion: string;
    lpsHomologationId: string;
    timeoutMs: number;
  };
  /** Pro Santé Connect: clinician login (consumer) and token introspection (source) */
  psc?: {
    issuer: string;
    clientId: string;
    clientSecret: string;
    /** audience every clinician token must carry (empty: not checked) */
    expectedAudience: string;
    acrValues: string[];
    scopes: string[];
    introspectionCacheMs: number;
    sessionIdleMinutes: number;
    sessionMaxHours: number;
    /** base64 of 32 bytes sealing PSC tokens at rest (AES-256-GCM); empty: a key file in dataDir, made at first start */
    tokenKey: string;
  };
  /** the signed network allow-list; replaces peer.allowedPeers when set */
  allowList?: {
    url: string;
    trustAnchors: string[];
    expectedSigner: string;
    /** download period (default 10 min): a box revoked at the registry is refused within it */
    refreshMinutes: number;
    /** deprecated (0: unset); when set, used instead of refreshMinutes */
    refreshHours: number;
    /** a peer or source host not on the list triggers a new download, at most this often */
    missRefreshMinutes: number;
    /** registry base URL: when set, the box enrols itself there at start (mutual TLS, its peer certificate) */
    enrolUrl: string;
    supportContact: string;
  };
  cache: { maxBytes: number; ttlHours: number };
  /** concurrency: jobs of different reports run side by side (one report's jobs stay in order);
   *  stableSeconds: a study's instance count must not change over this interval before its KOS is built */
  publication: { studyWaitMinutes: number; retryMaxMinutes: number; stableSeconds: number; concurrency: number };
  /** audit trail: rows older than retentionDays are deleted (daily); requests of one peer/clinician/
   *  patient/study/kind closer than accessWindowMinutes are shown as one access */
  audit: { retentionDays: number; accessWindowMinutes: number };
  /** source role: the IOCM C-STORE SCP that receives rejection notes from the PACS. It runs only when
   *  iocmCallingAets is set, and then also needs iocmPort and iocmAllowedAddresses (deny by default) */
  source: { iocmHost: string; iocmPort: number; iocmAet: string; iocmCallingAets: string[]; iocmAllowedAddresses: string[] };
}

export interface Hl7Config {
  host: string;
  port: number;
  maxMessageBytes: number;
  /** RIS addresses allowed to connect (never empty: deny by default); others are closed at once */
  allowedSenders: string[];
  /** connections open at once; more are closed at once */
  maxConnections: number;
  /** a connection silent this long is closed */
  idleTimeoutSeconds: number;
  /** MLLP over TLS, the RIS authenticating with a client certificate issued by `ca` */
  tls?: TlsFiles;
}
