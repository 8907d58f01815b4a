// IOCM: a C-STORE SCP (dcmjs-dimse) that accepts rejection-note KOS from the PACS (titles 113001,
// 113037, 113038, 113039). The rejected instances are remembered (the PACS may keep serving them) and
// every published KOS that references one is queued for re-publication without them (or withdrawal).
// Only KOS are accepted; anything else is refused at association or store time. Deny by default: a
// connection from an address not listed is closed at once, an unlisted calling AE title is rejected
// at association (the role starts no SCP at all when no calling AE title is configured).
import { createServer, type Server, type Socket } from 'node:net';
import dimse from 'dcmjs-dimse';
import type { Logger } from 'pino';
import { buildMeta } from '../dicom/part10.js';
import { KOS_SOP_CLASS, parseKos } from '../dicom/kos.js';
import { senderAddress } from '../hl7/mllp-server.js';

const { Scp, Dataset } = dimse as any;
const { CStoreResponse, CEchoResponse } = (dimse as any).responses;
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason } = (dimse as any).constants;
(dimse as any).log?.setLevel?.('silent');

const VERIFICATION = '1.2.840.10008.1.1';
const ACCEPTED_TS = ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2'];

export interface RejectionNote {
  noteUid: string;
  reason: string;
  instances: { studyUid: string; seriesUid: string; sopInstanceUid: string }[];
  /** where the note itself lives: a PACS files it in the study, and it must not be published either */
  note: { studyUid: string; seriesUid: string };
}

export interface IocmScpOptions {
  host: string;
  port: number;
  aet: string;
  /** calling AETs allowed to send (never empty: an empty list refuses every association) */
  callingAets: string[];
  /** source IP addresses allowed to connect; other connections are closed at once */
  allowedAddresses: string[];
  logger: Logger;
  /** stores the rejection durably; the C-STORE succeeds only when it resolved */
  onRejection: (note: RejectionNote) => Promise<void> | void;
  timeoutMs?: number;
}

export interface IocmScp {
  port: number;
  close(): Promise<void>;
}

export async function startIocmScp(o: IocmScpOptions): Promise<IocmScp> {
  const sockets = new Set<Socket>();
  const timeout = o.timeoutMs ?? 30_000;

  class RejectionScp extends Scp {
    constructor(socket: Socket, opts: object) {
      super(socket, opts);
      // keep the raw dataset bytes: parsed by our own KOS reader
      (this as any).createDatasetFromStoreWritableStream = (writable: any, context: any, cb: (ds: unknown) => void) => {
        const ds = new Dataset({}, context.getAcceptedTransferSyntaxUid());
        ds.raw = writable.toBuffer();
        cb(ds);
      };
    }
    associationRequested(association: any) {
      const calling = String(association.getCallingAeTitle() ?? '').trim();
      const called = String(association.getCalledAeTitle() ?? '').trim();
      if (called !== o.aet || !o.callingAets.includes(calling)) {
        o.logger.warn({ event: 'iocm-association-refused', calling, called }, 'IOCM association refused');
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser,
          called !== o.aet ? RejectReason.CalledAeNotRecognized : RejectReason.CallingAeNotRecognized);
        return;
      }
      for (const pc of association.getPresentationContexts()) {
        const ctx = association.getPresentationContext(pc.id);
        const abstract = ctx.getAbstractSyntaxUid();
        if (abstract !== KOS_SOP_CLASS && abstract !== VERIFICATION) {
          ctx.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        const ts = (ctx.getTransferSyntaxUids() as string[]).find((t) => ACCEPTED_TS.includes(t));
        if (ts) ctx.setResult(PresentationContextResult.Accept, ts);
        else ctx.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
      this.sendAssociationAccept();
    }
    associationReleaseRequested() {
      this.sendAssociationReleaseResponse();
    }
    cEchoRequest(request: any, cb: (r: unknown) => void) {
      const r = CEchoResponse.fromRequest(request);
      r.setStatus(Status.Success);
      cb(r);
    }
    cStoreRequest(request: any, cb: (r: unknown) => void) {
      const respond = (status: number) => {
        const r = CStoreResponse.fromRequest(request);
        r.setStatus(status);
        cb(r);
      };
      void (async () => {
        const ds = request.getDataset();
        const sopClassUid = request.getAffectedSopClassUid();
        const sopInstanceUid = request.getAffectedSopInstanceUid();
        if (!ds?.raw || sopClassUid !== KOS_SOP_CLASS) return respond(0xa900); // dataset does not match SOP class
        let note: RejectionNote;
        try {
          const part10 = Buffer.concat([buildMeta({ sopClassUid, sopInstanceUid, transferSyntaxUid: ds.getTransferSyntaxUid() }), ds.raw]);
          const kos = parseKos(part10);
          if (!kos.isRejectionNote) {
            o.logger.warn({ event: 'iocm-not-a-rejection', title: kos.title.code }, 'KOS received on the IOCM port is not a rejection note: refused');
            return respond(0xa900);
          }
          note = {
            noteUid: kos.sopInstanceUid,
            reason: `${kos.title.code} ${kos.title.meaning}`,
            note: { studyUid: kos.studyInstanceUid, seriesUid: kos.seriesInstanceUid },
            instances: kos.studies.flatMap((s) => s.series.flatMap((se) => se.instances.map((i) => ({ studyUid: s.studyUid, seriesUid: se.seriesUid, sopInstanceUid: i.sopInstanceUid })))),
          };
        } catch (e) {
          o.logger.warn({ event: 'iocm-unreadable', err: (e as Error).message }, 'unreadable KOS on the IOCM port');
          return respond(0xc000); // cannot understand
        }
        try {
          await o.onRejection(note);
          respond(Status.Success);
        } catch (e) {
          o.logger.error({ err: e }, 'IOCM rejection could not be recorded');
          respond(0xa700); // out of resources: the PACS may send it again
        }
      })();
    }
  }

  const allowed = new Set(o.allowedAddresses.map(senderAddress));
  const server: Server = createServer((socket) => {
    const remote = senderAddress(socket.remoteAddress);
    if (!allowed.has(remote)) {
      o.logger.warn({ event: 'iocm-connection-refused', remote }, 'IOCM connection from an address not in source.iocmAllowedAddresses: closed');
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const scp = new RejectionScp(socket, { connectTimeout: timeout, associationTimeout: timeout, pduTimeout: timeout }) as any;
    scp.connected = true;
    scp.on('networkError', () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : o.port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
