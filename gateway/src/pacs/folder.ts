// A local PACS: Part 10 files under a folder (<study>/<series>/<sop>.dcm), indexed in the box database
// (folder-index.ts).
// Writes are atomic (temp file, fsync, rename, fsync dir) and only renamed files are ever indexed, so a
// crash leaves at worst a stray temp file. Putting the same instance twice (even concurrently) is
// idempotent. Backs the demo PACS and the consumer's study cache.
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, unlink, access, constants as fsc } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Store } from '../store/database.js';
import {
  NotAcceptableError, NotFoundError,
  type DicomJson, type DicomRef, type FramePart, type InstancePart, type Pacs, type QueryKeys,
  type QueryOptions, type RetrieveOptions, type StoreResult,
} from './pacs.js';
import { readInfo, extractFrame, toDicomJson, FrameRangeError, Part10Error, type Part10Info } from '../dicom/part10.js';
import { FolderIndex, validUid, type InstanceRow, type Row } from './folder-index.js';
import { ANY_TRANSFER_SYNTAX, TS, frameMediaType, isEncapsulated, storedIsAcceptable } from '../dicom/transfer-syntax.js';

export interface FolderPacsConfig {
  kind: 'folder';
  path: string;
  /** key of this store in the index (default: the absolute path) — lets stores share one database */
  name?: string;
  /**
   * fsync each file and its directory before indexing it (default true). A cache may turn it off and
   * sync in batches itself (`syncFiles`): after a crash a file may then be shorter than its index row
   * says, which `verify` detects.
   */
  durable?: boolean;
}

/** Follows one put while it is written (the consumer cache streams instances to viewers as they land). */
export interface PutObserver {
  /** the header is known (early, from the first bytes) and the data goes to `tmpPath`, not yet renamed */
  onHeader?(info: Part10Info, tmpPath: string): void;
  /** `written` bytes of the temp file are readable */
  onProgress?(written: number): void;
}

export interface PutResult {
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  transferSyntaxUid: string;
  size: number;
  /** absolute path of the stored file */
  path: string;
}

const HEAD_BYTES = 256 * 1024;
const WRITE_BATCH = 1024 * 1024;
const MAX_HEADER_FILE = 64 * 1024 * 1024;

export class FolderPacs implements Pacs {
  readonly kind = 'folder' as const;
  readonly root: string;
  private readonly durable: boolean;
  private readonly idx: FolderIndex;

  constructor(store: Store, config: FolderPacsConfig) {
    this.root = resolve(config.path);
    this.idx = new FolderIndex(store, config.name ?? this.root);
    this.durable = config.durable ?? true;
  }

  async echo(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await access(this.root, fsc.R_OK | fsc.W_OK);
  }

  /** Stores one Part 10 instance. Throws Part10Error for input that is not a usable Part 10 file. */
  async put(input: Readable | Buffer, signal?: AbortSignal, observer?: PutObserver): Promise<PutResult> {
    const tmpDir = join(this.root, '.tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${randomBytes(12).toString('hex')}.part`);
    let moved = false;
    try {
      const fh = await open(tmp, 'wx');
      const head: Buffer[] = [];
      let headLen = 0;
      let size = 0;
      let early: Part10Info | undefined;
      let tried = false;
      try {
        const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(input) ? [input] : (input as AsyncIterable<Buffer>);
        // network chunks are small (16–64 KiB): written in batches of WRITE_BATCH, fewer syscalls
        let pending: Buffer[] = [];
        let pendingLen = 0;
        const flush = async () => {
          if (!pendingLen) return;
          const bufs = pending;
          const n = pendingLen;
          pending = [];
          pendingLen = 0;
          const { bytesWritten } = await fh.writev(bufs);
          if (bytesWritten < n) {
            const rest = Buffer.concat(bufs).subarray(bytesWritten);
            let off = 0;
            while (off < rest.length) off += (await fh.write(rest, off)).bytesWritten;
          }
          size += n;
          if (early) observer?.onProgress?.(size);
        };
        for await (const c of chunks) {
          signal?.throwIfAborted();
          const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c);
          if (headLen < HEAD_BYTES) { head.push(chunk); headLen += chunk.length; }
          pending.push(chunk);
          pendingLen += chunk.length;
          if (observer && !tried && headLen >= HEAD_BYTES) {
            // announce the instance once its header is in (pixel data within the first bytes); when the
            // header needs the whole file, it is announced at the end
            tried = true;
            try { early = readInfo(Buffer.concat(head), { prefix: true }); } catch { early = undefined; }
            if (early) observer.onHeader?.(early, tmp);
          }
          if (pendingLen >= WRITE_BATCH || (early && size === 0)) await flush();
        }
        await flush();
        if (this.durable) await fh.sync();
      } finally {
        await fh.close();
      }
      const info = early ?? await this.readHeader(Buffer.concat(head), size, tmp);
      if (observer && !early) { observer.onHeader?.(info, tmp); observer.onProgress?.(size); }
      for (const u of [info.studyInstanceUid, info.seriesInstanceUid, info.sopInstanceUid]) {
        if (!validUid(u)) throw new Part10Error('instance lacks valid Study/Series/SOP Instance UIDs');
      }
      if (!info.sopClassUid) throw new Part10Error('instance has no SOP Class UID');
      const rel = join(info.studyInstanceUid, info.seriesInstanceUid, `${info.sopInstanceUid}.dcm`);
      const dir = join(this.root, info.studyInstanceUid, info.seriesInstanceUid);
      await mkdir(dir, { recursive: true });
      await rename(tmp, join(this.root, rel));
      moved = true;
      if (this.durable) await fsyncDir(dir);
      await this.idx.index(info, size, rel);
      return {
        sopInstanceUid: info.sopInstanceUid, sopClassUid: info.sopClassUid, studyInstanceUid: info.studyInstanceUid,
        seriesInstanceUid: info.seriesInstanceUid, transferSyntaxUid: info.transferSyntaxUid, size, path: join(this.root, rel),
      };
    } finally {
      if (!moved) await unlink(tmp).catch(() => undefined);
    }
  }

  private async readHeader(head: Buffer, size: number, file: string): Promise<Part10Info> {
    try {
      return readInfo(head, { prefix: head.length < size });
    } catch (e) {
      if (!(e instanceof Part10Error) || head.length >= size) throw e;
      if (size > MAX_HEADER_FILE && !/Pixel Data/.test(e.message)) throw e;
      // no pixel data within the first bytes (SR, KOS, deflated, huge headers): read it all
      return readInfo(await readFile(file));
    }
  }

  /** fsyncs files of this store (and their directories): the batched durability of a non-durable store. */
  async syncFiles(paths: string[]): Promise<void> {
    const dirs = new Set<string>();
    await Promise.all(paths.map(async (p) => {
      const fh = await open(p, 'r');
      try { await fh.sync(); } finally { await fh.close(); }
      dirs.add(join(p, '..'));
    }));
    for (const d of dirs) await fsyncDir(d);
  }

  /** Removes a study, series or instance (files and index). Returns how many instances went. */
  async delete(ref: DicomRef): Promise<number> {
    const rows = await this.instances(ref);
    await this.idx.remove(rows.map((r) => r.sop_uid));
    for (const r of rows) await rm(join(this.root, r.path), { force: true });
    if (ref.series && !ref.instance) await rm(join(this.root, ref.study, ref.series), { recursive: true, force: true }).catch(() => undefined);
    if (!ref.series) await rm(join(this.root, ref.study), { recursive: true, force: true }).catch(() => undefined);
    return rows.length;
  }

  /** Instances of a ref, in series then instance-number order. */
  instances(ref: DicomRef): Promise<InstanceRow[]> {
    return this.idx.instances(ref);
  }

  async findStudies(keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    return (await this.idx.studies(keys, opts)).map(studyJson);
  }

  async findSeries(study: string | undefined, keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    return (await this.idx.series(study ? { ...keys, StudyInstanceUID: study } : keys, opts)).map(seriesJson);
  }

  async findInstances(study: string | undefined, series: string | undefined, keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    const k = { ...keys };
    if (study) k.StudyInstanceUID = study;
    if (series) k.SeriesInstanceUID = series;
    return (await this.idx.instanceRows(k, opts)).map(instanceJson);
  }

  async *retrieve(ref: DicomRef, opts: RetrieveOptions): AsyncGenerator<InstancePart> {
    const rows = await this.instances(ref);
    if (!rows.length) throw new NotFoundError('no instances');
    const accepted = opts.transferSyntaxes;
    const refused = rows.find((r) => !storedIsAcceptable(r.transfer_syntax, accepted));
    if (refused) throw new NotAcceptableError(`stored as ${refused.transfer_syntax}, which is not among: ${accepted.join(', ')} (a folder store does not transcode)`);
    for (const r of rows) {
      opts.signal?.throwIfAborted();
      yield { transferSyntaxUid: r.transfer_syntax, sopInstanceUid: r.sop_uid, length: r.size, body: createReadStream(join(this.root, r.path)) };
    }
  }

  async *retrieveFrames(ref: Required<DicomRef>, frames: number[], opts: RetrieveOptions): AsyncGenerator<FramePart> {
    const [row] = await this.instances(ref);
    if (!row) throw new NotFoundError('no such instance');
    const ts = row.transfer_syntax;
    const native = !isEncapsulated(ts);
    const delivered = native ? TS.ExplicitVRLittleEndian : ts; // native frames are raw little-endian bytes
    const accepted = opts.transferSyntaxes;
    if (!(accepted.length === 0 || accepted.includes(ANY_TRANSFER_SYNTAX) || accepted.includes(delivered) || (native && accepted.includes(ts)))) {
      throw new NotAcceptableError(`frames are ${delivered}, not among: ${accepted.join(', ')}`);
    }
    for (const f of frames) if (!Number.isInteger(f) || f < 1 || f > row.frames) throw new FrameRangeError(f, row.frames);
    const file = await readFile(join(this.root, row.path));
    for (const f of frames) {
      const { data, transferSyntaxUid } = extractFrame(file, f);
      yield { contentType: frameMediaType(transferSyntaxUid), transferSyntaxUid, body: Readable.from([data]) };
    }
  }

  async metadata(ref: DicomRef): Promise<DicomJson[]> {
    const rows = await this.instances(ref);
    if (!rows.length) throw new NotFoundError('no instances');
    const out: DicomJson[] = [];
    for (const r of rows) out.push(await this.instanceMetadata(r));
    return out;
  }

  private async instanceMetadata(r: InstanceRow): Promise<DicomJson> {
    const file = join(this.root, r.path);
    let buf: Buffer;
    if (r.pixel_offset !== null) {
      const fh = await open(file, 'r');
      try {
        buf = Buffer.alloc(r.pixel_offset);
        await fh.read(buf, 0, r.pixel_offset, 0);
      } finally {
        await fh.close();
      }
    } else {
      buf = await readFile(file);
    }
    const json = toDicomJson(buf, r.pixel_offset !== null ? { vr: isEncapsulated(r.transfer_syntax) ? 'OB' : 'OW' } : undefined);
    json['00083002'] = { vr: 'UI', Value: [r.transfer_syntax] };
    return json;
  }

  async store(instances: AsyncIterable<Buffer | Readable>, signal?: AbortSignal): Promise<StoreResult> {
    const result: StoreResult = { stored: [], failed: [] };
    for await (const inst of instances) {
      try {
        const r = await this.put(inst, signal);
        result.stored.push({ sopInstanceUid: r.sopInstanceUid, sopClassUid: r.sopClassUid });
      } catch (e) {
        if (signal?.aborted) throw e;
        if (!Buffer.isBuffer(inst)) inst.destroy();
        result.failed.push({ reason: (e as Error).message });
      }
    }
    return result;
  }

  async close(): Promise<void> {
    // the Store belongs to the caller
  }
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  } catch { /* some filesystems refuse fsync on directories */ }
}

const str = (v: unknown) => (v === null || v === undefined ? '' : String(v));
function el(vr: string, v: unknown): { vr: string; Value?: unknown[] } {
  const s = str(v);
  if (s === '') return { vr };
  if (vr === 'PN') return { vr, Value: [{ Alphabetic: s }] };
  if (vr === 'IS' || vr === 'US') return { vr, Value: [Number(s)] };
  return { vr, Value: [s] };
}

function studyLevel(r: Row): DicomJson {
  return {
    '00080020': el('DA', r.study_date), '00080030': el('TM', r.study_time), '00080050': el('SH', r.accession),
    '00080090': el('PN', r.referring), '00081030': el('LO', r.description),
    '00100010': el('PN', r.patient_name), '00100020': el('LO', r.patient_id), '00100030': el('DA', r.patient_birth_date),
    '00100040': el('CS', r.patient_sex), '0020000D': el('UI', r.study_uid), '00200010': el('SH', r.study_id),
  };
}

function studyJson(r: Row): DicomJson {
  const mods = str(r.modalities).split(',').filter(Boolean);
  return {
    ...studyLevel(r),
    '00080061': mods.length ? { vr: 'CS', Value: mods } : { vr: 'CS' },
    '00201206': el('IS', r.n_series), '00201208': el('IS', r.n_instances),
  };
}

function seriesJson(r: Row): DicomJson {
  return {
    '00080060': el('CS', r.modality), '0008103E': el('LO', r.series_description), '0020000D': el('UI', r.study_uid),
    '0020000E': el('UI', r.series_uid), '00200011': el('IS', r.series_number), '00201209': el('IS', r.n_instances),
  };
}

function instanceJson(r: Row): DicomJson {
  return {
    '00080016': el('UI', r.sop_class), '00080018': el('UI', r.sop_uid), '00080060': el('CS', r.modality),
    '00083002': el('UI', r.transfer_syntax), '0020000D': el('UI', r.study_uid), '0020000E': el('UI', r.series_uid),
    '00200013': el('IS', r.instance_number), '00280008': el('IS', r.frames), '00280010': el('US', r.rows), '00280011': el('US', r.columns),
  };
}
