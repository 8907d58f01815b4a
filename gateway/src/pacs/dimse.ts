// PACS adapter speaking DIMSE with dcmjs-dimse: C-ECHO, C-FIND, C-GET or C-MOVE (to the box's own
// C-STORE SCP on 127.0.0.1), C-STORE. Instances are kept as the raw dataset bytes the PACS sent (no
// re-encoding) behind a file meta header we write, and handed over one by one as they arrive.
// Concurrent retrieves never mix: each C-MOVE gets a box-wide unique Message ID, and the C-STOREs it
// causes are routed by their Move Originator Message ID (by study UID when a PACS omits it).
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import dcmjs from 'dcmjs';
import {
  NotAcceptableError, NotFoundError, PacsTimeoutError, PacsUnavailableError,
  type DicomJson, type DicomRef, type FramePart, type InstancePart, type Pacs, type QueryKeys,
  type QueryOptions, type RetrieveOptions, type StoreResult,
} from './pacs.js';
import { buildMeta, readInfo, extractFrame, toDicomJson, readMeta } from '../dicom/part10.js';
import { ANY_TRANSFER_SYNTAX, TS, frameMediaType, isEncapsulated, storedIsAcceptable } from '../dicom/transfer-syntax.js';

export interface DimsePacsConfig {
  kind: 'dimse';
  host: string;
  port: number;
  calledAet: string;
  callingAet: string;
  retrieve: 'c-get' | 'c-move';
  /** the box's C-STORE SCP for C-MOVE (bound to 127.0.0.1); aet defaults to callingAet */
  storeScp?: { port: number; aet?: string };
  /** flat form used by the box configuration */
  storeScpPort?: number;
  timeoutMs?: number;
}

const { Client, Scp, Dataset } = dimse as any;
const { CEchoRequest, CFindRequest, CGetRequest, CMoveRequest, CStoreRequest } = (dimse as any).requests;
const { CStoreResponse } = (dimse as any).responses;
const { Status, PresentationContextResult } = (dimse as any).constants;
const { PresentationContext } = (dimse as any).association;
const { DicomMetaDictionary, DicomMessage } = dcmjs.data;
(dimse as any).log?.setLevel?.('silent'); // its INFO lines would log patient data

/** syntaxes proposed for C-GET storage sub-operations when the caller takes anything as stored */
const AS_STORED_PROPOSAL = [
  TS.JpegLsLossless, TS.JpegLsNearLossless, TS.JpegBaseline, TS.JpegExtended, TS.JpegLossless, TS.JpegLosslessSV1,
  TS.Jpeg2000Lossless, TS.Jpeg2000, TS.RleLossless, TS.DeflatedExplicitVRLittleEndian, TS.ExplicitVRBigEndian,
  TS.ExplicitVRLittleEndian, TS.ImplicitVRLittleEndian,
];

const PENDING = new Set([0xff00, 0xff01]);
const WINDOW = 3; // instances received ahead of the consumer before the PACS is made to wait

let nextMessageId = Math.floor(Math.random() * 30000) + 1;
function uniqueMessageId(): number {
  nextMessageId = (nextMessageId % 65535) + 1;
  return nextMessageId;
}

const RETURN_KEYS: Record<'STUDY' | 'SERIES' | 'IMAGE', string[]> = {
  STUDY: ['StudyInstanceUID', 'StudyDate', 'StudyTime', 'AccessionNumber', 'PatientName', 'PatientID', 'PatientBirthDate',
    'PatientSex', 'StudyDescription', 'StudyID', 'ReferringPhysicianName', 'ModalitiesInStudy', 'NumberOfStudyRelatedSeries',
    'NumberOfStudyRelatedInstances'],
  SERIES: ['StudyInstanceUID', 'SeriesInstanceUID', 'Modality', 'SeriesNumber', 'SeriesDescription', 'NumberOfSeriesRelatedInstances'],
  IMAGE: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID', 'SOPClassUID', 'InstanceNumber', 'NumberOfFrames'],
};

function keyword(k: string): string {
  const m = /^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$/.exec(k);
  if (!m) return k;
  const entry = DicomMetaDictionary.dictionary[`(${m[1].toUpperCase()},${m[2].toUpperCase()})`];
  return entry?.name ?? k;
}

/** one instance travelling from the PACS to the consumer */
interface Arrival {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  data: Buffer;
}

/** The state of one retrieve: its own queue, so two retrieves never see each other's instances. */
class Inbox {
  queue: Arrival[] = [];
  held: (() => void)[] = [];
  done = false;
  error: unknown;
  received = 0;
  private wake: (() => void) | undefined;
  constructor(readonly study: string, public messageId: number, readonly accepted: string[] = [ANY_TRANSFER_SYNTAX]) {}

  push(a: Arrival, respond: () => void): void {
    this.received++;
    this.queue.push(a);
    if (this.queue.length < WINDOW) respond(); else this.held.push(respond);
    this.notify();
  }
  finish(error?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.notify();
  }
  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
  async *drain(): AsyncGenerator<Arrival> {
    for (;;) {
      const a = this.queue.shift();
      if (a) {
        this.held.shift()?.();
        yield a;
        continue;
      }
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((r) => { this.wake = r; });
    }
  }
}

function part10(a: Arrival): Buffer {
  return Buffer.concat([buildMeta({ sopClassUid: a.sopClassUid, sopInstanceUid: a.sopInstanceUid, transferSyntaxUid: a.transferSyntaxUid }), a.data]);
}

/**
 * Keeps the raw dataset bytes instead of letting dcmjs-dimse parse them. Also starts each command's
 * bytes afresh: dcmjs-dimse 0.3 keeps appending to one buffer after a command without a dataset
 * (every pending C-GET/C-MOVE response) and re-parses the whole of it at each command, a cost that
 * grew with every instance of a retrieve (a 300-instance C-MOVE re-parsed 38 KB at its end).
 */
function keepRaw(network: any): void {
  network.createDatasetFromStoreWritableStream = (writable: any, context: any, cb: (ds: unknown) => void) => {
    const ds = new Dataset({}, context.getAcceptedTransferSyntaxUid());
    const chunks = writable.queue;
    ds.raw = Array.isArray(chunks) && chunks.every((c) => Buffer.isBuffer(c)) ? Buffer.concat(chunks) : writable.toBuffer();
    cb(ds);
  };
  const perform = network._performDimse;
  if (typeof perform === 'function') {
    network._performDimse = function (this: any, ...args: unknown[]) {
      this.dimseStream = undefined; // the command is parsed: the next one starts a new buffer
      return perform.apply(this, args);
    };
  }
}

export class DimsePacs implements Pacs {
  readonly kind = 'dimse' as const;
  private scpServer: Server | undefined;
  private readonly inboxes = new Set<Inbox>();
  private readonly sockets = new Set<Socket>();
  private readonly timeout: number;

  constructor(private readonly config: DimsePacsConfig, private readonly logger?: { warn: (o: object, m?: string) => void }) {
    this.timeout = config.timeoutMs ?? 30_000;
  }

  private get scpPort(): number | undefined {
    return this.config.storeScp?.port ?? this.config.storeScpPort;
  }

  private get scpAet(): string {
    return this.config.storeScp?.aet ?? this.config.callingAet;
  }

  /** Starts the C-STORE SCP when retrieving by C-MOVE. */
  async start(): Promise<void> {
    if (this.config.retrieve !== 'c-move' || this.scpServer) return;
    const port = this.scpPort;
    if (!port) throw new Error('dimse c-move needs storeScp.port');
    const self = this;
    class StoreScp extends Scp {
      constructor(socket: Socket, opts: object) {
        super(socket, opts);
        keepRaw(this);
      }
      associationRequested(association: any) {
        // take what the PACS proposes first (as stored), unless a waiting retrieve needs a given syntax:
        // the PACS then transcodes (the association is negotiated before we know which retrieve it serves)
        const wanted = [...self.inboxes].map((b) => b.accepted).filter((a) => !a.includes(ANY_TRANSFER_SYNTAX));
        for (const pc of association.getPresentationContexts()) {
          const ctx = association.getPresentationContext(pc.id);
          const proposed: string[] = ctx.getTransferSyntaxUids();
          const pick = proposed.find((ts) => wanted.every((a) => a.includes(ts)));
          if (pick) ctx.setResult(PresentationContextResult.Accept, pick);
          else ctx.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
        }
        this.sendAssociationAccept();
      }
      associationReleaseRequested() { this.sendAssociationReleaseResponse(); }
      cEchoRequest(request: any, cb: (r: unknown) => void) {
        const r = (dimse as any).responses.CEchoResponse.fromRequest(request);
        r.setStatus(Status.Success);
        cb(r);
      }
      cStoreRequest(request: any, cb: (r: unknown) => void) {
        self.routeStore(request, cb);
      }
    }
    const server = createServer((socket) => {
      socket.setNoDelay(true); // C-STORE responses go out at once (see associate)
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      const scp = new StoreScp(socket, { connectTimeout: this.timeout, associationTimeout: this.timeout, pduTimeout: this.timeout }) as any;
      scp.connected = true;
      scp.on('networkError', () => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.scpServer = server;
  }

  /** Hands an incoming C-STORE to the retrieve that asked for it. */
  private routeStore(request: any, cb: (r: unknown) => void): void {
    const respond = (status: number) => {
      const r = CStoreResponse.fromRequest(request);
      r.setStatus(status);
      cb(r);
    };
    const ds = request.getDataset();
    const arrival: Arrival = {
      sopClassUid: request.getAffectedSopClassUid(),
      sopInstanceUid: request.getAffectedSopInstanceUid(),
      transferSyntaxUid: ds?.getTransferSyntaxUid(),
      data: ds?.raw,
    };
    if (!arrival.data) return respond(0xa700);
    const originator = Number(request.getCommandDataset().getElement('MoveOriginatorMessageID'));
    let inbox = [...this.inboxes].find((b) => b.messageId === originator);
    if (!inbox) {
      let study = '';
      try { study = readInfo(part10(arrival)).studyInstanceUid; } catch { /* unreadable */ }
      inbox = [...this.inboxes].find((b) => b.study === study);
    }
    if (!inbox) {
      this.logger?.warn({ event: 'dimse-unexpected-store' }, 'C-STORE that no retrieve is waiting for: refused');
      return respond(0xa700);
    }
    inbox.push(arrival, () => respond(Status.Success));
  }

  /** Runs one association with the given requests; settles when it closes. */
  private associate(requests: any[], opts: { onStore?: (request: any, cb: (r: unknown) => void) => void; contexts?: any[]; signal?: AbortSignal } = {}): Promise<void> {
    const client = new Client();
    for (const r of requests) client.addRequest(r);
    for (const c of opts.contexts ?? []) client.addAdditionalPresentationContext(c, true);
    return new Promise<void>((resolve, reject) => {
      let failure: Error | undefined;
      let established = false;
      const fail = (e: Error) => { failure ??= e; };
      // dcmjs-dimse's own timeouts do not fire against a PACS that accepted the TCP connection and then
      // went silent: the association must be accepted within the timeout, else the socket is cut
      const acceptTimer = setTimeout(() => {
        fail(new PacsTimeoutError(`PACS did not accept the association within ${this.timeout} ms`));
        client.network?.socket?.destroy();
      }, this.timeout);
      client.on('associationAccepted', () => { established = true; clearTimeout(acceptTimer); });
      client.on('associationRejected', () => fail(new PacsUnavailableError('PACS rejected the association')));
      client.on('networkError', (e: Error) => {
        const message = String(e?.message ?? e);
        fail(/time(d)? ?out/i.test(message) ? new PacsTimeoutError(`PACS did not answer: ${message}`, { cause: e }) : new PacsUnavailableError(`PACS unreachable: ${message}`, { cause: e }));
      });
      if (opts.onStore) client.on('cStoreRequest', opts.onStore);
      client.on('closed', () => {
        clearTimeout(acceptTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (failure) reject(failure);
        else if (!established) reject(new PacsUnavailableError('association closed before it was accepted'));
        else resolve();
      });
      const onAbort = () => { try { client.abort(); } catch { /* not connected */ } };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      client.send(this.config.host, this.config.port, this.config.callingAet, this.config.calledAet, {
        connectTimeout: this.timeout, associationTimeout: this.timeout, pduTimeout: this.timeout,
      });
      const network = client.network;
      if (network) {
        // small PDUs (C-STORE responses, P-DATA ends) must not wait on Nagle against delayed ACKs:
        // that stalled every instance by tens of milliseconds
        network.socket?.setNoDelay?.(true);
        keepRaw(network);
        // a box-wide unique Message ID, so Move Originator Message IDs identify the retrieve
        network._getNextMessageId = uniqueMessageId;
      }
    });
  }

  async echo(signal?: AbortSignal): Promise<void> {
    const req = new CEchoRequest();
    let status: number | undefined;
    req.on('response', (r: any) => { status = r.getStatus(); });
    await this.associate([req], { signal });
    if (status !== Status.Success) throw new PacsUnavailableError(`C-ECHO failed (status ${status})`);
  }

  private async find(level: 'STUDY' | 'SERIES' | 'IMAGE', keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    const elements: Record<string, unknown> = {};
    for (const k of RETURN_KEYS[level]) elements[k] = '';
    for (const f of opts.includeField ?? []) if (f !== 'all') elements[keyword(f)] = '';
    for (const [k, v] of Object.entries(keys)) elements[keyword(k)] = k === 'StudyInstanceUID' || k === 'SeriesInstanceUID' ? String(v).replace(/,/g, '\\') : v;
    const req = level === 'STUDY' ? CFindRequest.createStudyFindRequest(elements)
      : level === 'SERIES' ? CFindRequest.createSeriesFindRequest(elements) : CFindRequest.createImageFindRequest(elements);
    const out: DicomJson[] = [];
    let finalStatus: number | undefined;
    req.on('response', (r: any) => {
      const st = r.getStatus();
      if (PENDING.has(st) && r.hasDataset()) out.push(toJson(r.getDataset().getElements()));
      else finalStatus = st;
    });
    await this.associate([req], { signal: opts.signal });
    if (finalStatus !== undefined && finalStatus !== Status.Success && finalStatus !== 0xfe00) throw new PacsUnavailableError(`C-FIND failed (status 0x${finalStatus.toString(16)})`);
    const start = opts.offset ?? 0;
    return out.slice(start, opts.limit !== undefined ? start + opts.limit : undefined);
  }

  findStudies(keys: QueryKeys, opts?: QueryOptions): Promise<DicomJson[]> {
    return this.find('STUDY', keys, opts);
  }

  findSeries(study: string | undefined, keys: QueryKeys, opts?: QueryOptions): Promise<DicomJson[]> {
    return this.find('SERIES', study ? { ...keys, StudyInstanceUID: study } : keys, opts);
  }

  async findInstances(study: string | undefined, series: string | undefined, keys: QueryKeys, opts?: QueryOptions): Promise<DicomJson[]> {
    const k = { ...keys };
    if (study) k.StudyInstanceUID = study;
    if (series) k.SeriesInstanceUID = series;
    if (study && !series && !k.SeriesInstanceUID) {
      // hierarchical PACSs (Orthanc) want the series at image level: query each series
      const all: DicomJson[] = [];
      for (const se of await this.findSeries(study, {}, { signal: opts?.signal })) {
        const uid = se['0020000E']?.Value?.[0] as string | undefined;
        if (uid) all.push(...await this.find('IMAGE', { ...k, SeriesInstanceUID: uid }, { ...opts, limit: undefined, offset: undefined }));
      }
      const start = opts?.offset ?? 0;
      return all.slice(start, opts?.limit !== undefined ? start + opts.limit : undefined);
    }
    return this.find('IMAGE', k, opts);
  }

  /**
   * SOP classes a C-GET of `ref` may bring: the study's SOP Classes in Study (one C-FIND answer, a
   * superset for a series), else, from a PACS that does not fill it, every instance's class (one
   * answer per instance: slow on a long series).
   */
  private async sopClassesOf(ref: DicomRef, signal?: AbortSignal): Promise<Set<string>> {
    if (!ref.instance) {
      const [study] = await this.find('STUDY', { StudyInstanceUID: ref.study, SOPClassesInStudy: '' }, { signal });
      if (!study) return new Set();
      const inStudy = (study['00080062']?.Value ?? []).filter((v): v is string => typeof v === 'string' && v !== '');
      if (inStudy.length) return new Set(inStudy);
    }
    return new Set((await this.findInstances(ref.study, ref.series, ref.instance ? { SOPInstanceUID: ref.instance } : {}, { signal }))
      .map((i) => i['00080016']?.Value?.[0] as string).filter(Boolean));
  }

  /** Raw arrivals of a retrieve, by C-GET or C-MOVE. */
  private async *arrivals(ref: DicomRef, proposal: string[], signal?: AbortSignal, accepted?: string[]): AsyncGenerator<Arrival> {
    const inbox = new Inbox(ref.study, 0, accepted);
    let req: any;
    let contexts: any[] | undefined;
    if (this.config.retrieve === 'c-get') {
      req = ref.instance ? CGetRequest.createImageGetRequest(ref.study, ref.series, ref.instance)
        : ref.series ? CGetRequest.createSeriesGetRequest(ref.study, ref.series) : CGetRequest.createStudyGetRequest(ref.study);
      // storage contexts only for the SOP classes in the ref, one per syntax (each context accepts one)
      const classes = await this.sopClassesOf(ref, signal);
      if (!classes.size) throw new NotFoundError('no instances');
      contexts = [];
      for (const cls of classes) for (const ts of proposal) {
        const pc = new PresentationContext(0, cls, ts);
        pc.setProviderRole(true);
        pc.setUserRole(false);
        contexts.push(pc);
      }
      if (contexts.length > 120) contexts = contexts.slice(0, 120);
    } else {
      await this.start();
      req = ref.instance ? CMoveRequest.createImageMoveRequest(this.scpAet, ref.study, ref.series, ref.instance)
        : ref.series ? CMoveRequest.createSeriesMoveRequest(this.scpAet, ref.study, ref.series) : CMoveRequest.createStudyMoveRequest(this.scpAet, ref.study);
    }
    let finalStatus: number | undefined;
    let failures = 0;
    req.on('response', (r: any) => {
      if (PENDING.has(r.getStatus())) return;
      finalStatus = r.getStatus();
      failures = r.getFailures?.() ?? 0;
    });
    // the Message ID is assigned when the request goes out; learn it before the first C-STORE arrives
    const origSetMessageId = req.setMessageId.bind(req);
    req.setMessageId = (id: number) => { inbox.messageId = id; origSetMessageId(id); };
    this.inboxes.add(inbox);
    const done = this.associate([req], {
      contexts,
      signal,
      onStore: (request: any, cb: (r: unknown) => void) => {
        const ds = request.getDataset();
        const respond = (status: number) => { const r = CStoreResponse.fromRequest(request); r.setStatus(status); cb(r); };
        if (!ds?.raw) return respond(0xa700);
        inbox.push({ sopClassUid: request.getAffectedSopClassUid(), sopInstanceUid: request.getAffectedSopInstanceUid(), transferSyntaxUid: ds.getTransferSyntaxUid(), data: ds.raw }, () => respond(Status.Success));
      },
    });
    done.then(() => {
      if (inbox.received === 0) {
        inbox.finish(finalStatus === Status.Success || finalStatus === undefined || failures === 0
          ? new NotFoundError('no instances')
          : new PacsUnavailableError(`retrieve failed (status 0x${finalStatus.toString(16)})`));
      } else if (finalStatus !== undefined && finalStatus !== Status.Success && finalStatus !== 0xb000 && failures > 0) {
        inbox.finish(new PacsUnavailableError(`retrieve ended with ${failures} failure(s)`));
      } else inbox.finish();
    }, (e) => inbox.finish(e));
    try {
      yield* inbox.drain();
    } finally {
      this.inboxes.delete(inbox);
      for (const h of inbox.held.splice(0)) h();
    }
  }

  async *retrieve(ref: DicomRef, opts: RetrieveOptions): AsyncGenerator<InstancePart> {
    const accepted = opts.transferSyntaxes.length ? opts.transferSyntaxes : [ANY_TRANSFER_SYNTAX];
    const anyOk = accepted.includes(ANY_TRANSFER_SYNTAX);
    const proposal = anyOk ? AS_STORED_PROPOSAL : accepted;
    for await (const a of this.arrivals(ref, proposal, opts.signal, accepted)) {
      if (!storedIsAcceptable(a.transferSyntaxUid, accepted)) {
        throw new NotAcceptableError(`PACS sent ${a.transferSyntaxUid}, not among: ${accepted.join(', ')}`);
      }
      const data = part10(a);
      yield { transferSyntaxUid: a.transferSyntaxUid, sopInstanceUid: a.sopInstanceUid, length: data.length, body: Readable.from([data]) };
    }
  }

  async *retrieveFrames(ref: Required<DicomRef>, frames: number[], opts: RetrieveOptions): AsyncGenerator<FramePart> {
    const accepted = opts.transferSyntaxes.length ? opts.transferSyntaxes : [ANY_TRANSFER_SYNTAX];
    // frames of native data are raw little-endian bytes whatever the dataset syntax
    const proposal = accepted.includes(ANY_TRANSFER_SYNTAX) ? AS_STORED_PROPOSAL
      : accepted.includes(TS.ExplicitVRLittleEndian) ? [...accepted, TS.ImplicitVRLittleEndian] : accepted;
    let file: Buffer | undefined;
    for await (const a of this.arrivals(ref, proposal, opts.signal)) file ??= part10(a);
    if (!file) throw new NotFoundError('no such instance');
    const ts = readMeta(file)!.transferSyntaxUid;
    const delivered = isEncapsulated(ts) ? ts : TS.ExplicitVRLittleEndian;
    if (!accepted.includes(ANY_TRANSFER_SYNTAX) && !accepted.includes(delivered)) throw new NotAcceptableError(`frames are ${delivered}`);
    for (const f of frames) {
      const { data, transferSyntaxUid } = extractFrame(file, f);
      yield { contentType: frameMediaType(transferSyntaxUid), transferSyntaxUid, body: Readable.from([data]) };
    }
  }

  async metadata(ref: DicomRef, signal?: AbortSignal): Promise<DicomJson[]> {
    const out: DicomJson[] = [];
    for await (const a of this.arrivals(ref, AS_STORED_PROPOSAL, signal)) {
      const file = part10(a);
      const info = readInfo(file);
      const json = toDicomJson(info.pixelDataOffset ? file.subarray(0, info.pixelDataOffset) : file,
        info.pixelDataOffset ? { vr: isEncapsulated(a.transferSyntaxUid) ? 'OB' : 'OW' } : undefined);
      json['00083002'] = { vr: 'UI', Value: [a.transferSyntaxUid] };
      out.push(json);
    }
    if (!out.length) throw new NotFoundError('no instances');
    return out;
  }

  async store(instances: AsyncIterable<Buffer | Readable>, signal?: AbortSignal): Promise<StoreResult> {
    const result: StoreResult = { stored: [], failed: [] };
    const requests: any[] = [];
    for await (const inst of instances) {
      const buf = Buffer.isBuffer(inst) ? inst : Buffer.concat(await Readable.from(inst).toArray());
      try {
        const msg = DicomMessage.readFile(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), { ignoreErrors: true });
        const ts = readMeta(buf)!.transferSyntaxUid;
        const ds = new Dataset(DicomMetaDictionary.naturalizeDataset(msg.dict), ts);
        const req = new CStoreRequest(ds);
        const sop = String(ds.getElement('SOPInstanceUID'));
        const cls = String(ds.getElement('SOPClassUID'));
        req.on('response', (r: any) => {
          if (r.getStatus() === Status.Success || (r.getStatus() & 0xf000) === 0xb000) result.stored.push({ sopInstanceUid: sop, sopClassUid: cls });
          else result.failed.push({ sopInstanceUid: sop, reason: `C-STORE status 0x${r.getStatus().toString(16)}` });
        });
        requests.push(req);
      } catch (e) {
        result.failed.push({ reason: `not a readable Part 10 instance: ${(e as Error).message}` });
      }
    }
    if (requests.length) await this.associate(requests, { signal });
    return result;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const srv = this.scpServer;
    this.scpServer = undefined;
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
  }
}

/** C-FIND answer (naturalized dcmjs) → DICOM JSON without empty values' noise. */
function toJson(elements: Record<string, unknown>): DicomJson {
  const { QueryRetrieveLevel: _q, ...rest } = elements as Record<string, unknown>;
  void _q;
  const dict = DicomMetaDictionary.denaturalizeDataset(rest) as DicomJson;
  const out: DicomJson = {};
  for (const [tag, el] of Object.entries(dict)) {
    const v = (el.Value ?? []).filter((x) => x !== '' && x !== null && x !== undefined);
    out[tag.toUpperCase()] = v.length ? { vr: el.vr, Value: v } : { vr: el.vr };
  }
  return out;
}
