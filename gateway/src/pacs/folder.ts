// A local PACS: Part 10 files under a folder (<study>/<series>/<sop>.dcm), indexed in SQLite.
// Writes are atomic (temp file, fsync, rename, fsync dir) and only renamed files are ever indexed, so a
// crash leaves at worst a stray temp file. Putting the same instance twice (even concurrently) is
// idempotent. Backs the demo PACS and the consumer's study cache.
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, unlink, access, constants as fsc } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Db } from '../store/db.js';
import {
  NotAcceptableError, NotFoundError,
  type DicomJson, type DicomRef, type FramePart, type InstancePart, type Pacs, type QueryKeys,
  type QueryOptions, type RetrieveOptions, type StoreResult,
} from './pacs.js';
import { readInfo, extractFrame, toDicomJson, FrameRangeError, Part10Error, type Part10Info } from '../dicom/part10.js';
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

interface InstanceRow {
  sop_uid: string; series_uid: string; study_uid: string; sop_class: string; transfer_syntax: string;
  instance_number: number | null; frames: number; rows: number | null; columns: number | null;
  size: number; path: string; pixel_offset: number | null;
}

const UID = /^[0-9]+(\.[0-9]+)*$/;
const HEAD_BYTES = 256 * 1024;
const WRITE_BATCH = 1024 * 1024;
const MAX_HEADER_FILE = 64 * 1024 * 1024;

function validUid(u: string): boolean {
  return u.length > 0 && u.length <= 64 && UID.test(u);
}

/** DICOM wildcard (* ?) → SQL LIKE pattern with \ as escape. */
function likePattern(v: string): string {
  return v.replace(/[\\%_]/g, (c) => '\\' + c).replace(/\*/g, '%').replace(/\?/g, '_');
}

const KEYWORD_BY_TAG: Record<string, string> = {
  '00100020': 'PatientID', '00100010': 'PatientName', '00080020': 'StudyDate', '00080050': 'AccessionNumber',
  '00080061': 'ModalitiesInStudy', '0020000D': 'StudyInstanceUID', '0020000E': 'SeriesInstanceUID',
  '00080018': 'SOPInstanceUID', '00080060': 'Modality', '00081030': 'StudyDescription', '00200010': 'StudyID',
  '00080090': 'ReferringPhysicianName', '00200011': 'SeriesNumber', '0008103E': 'SeriesDescription',
  '00080016': 'SOPClassUID', '00200013': 'InstanceNumber', '00100030': 'PatientBirthDate', '00100040': 'PatientSex',
};

type Level = 'study' | 'series' | 'instance';

/** column and matching rule of each supported QIDO key */
const KEYS: Record<string, { col: string; kind: 'text' | 'ci' | 'uid' | 'date' | 'int' | 'modalities'; level: Level }> = {
  PatientID: { col: 'st.patient_id', kind: 'text', level: 'study' },
  PatientName: { col: 'st.patient_name', kind: 'ci', level: 'study' },
  PatientBirthDate: { col: 'st.patient_birth_date', kind: 'date', level: 'study' },
  PatientSex: { col: 'st.patient_sex', kind: 'text', level: 'study' },
  StudyDate: { col: 'st.study_date', kind: 'date', level: 'study' },
  AccessionNumber: { col: 'st.accession', kind: 'text', level: 'study' },
  StudyDescription: { col: 'st.description', kind: 'ci', level: 'study' },
  StudyID: { col: 'st.study_id', kind: 'text', level: 'study' },
  ReferringPhysicianName: { col: 'st.referring', kind: 'ci', level: 'study' },
  StudyInstanceUID: { col: 'st.study_uid', kind: 'uid', level: 'study' },
  ModalitiesInStudy: { col: '', kind: 'modalities', level: 'study' },
  SeriesInstanceUID: { col: 'se.series_uid', kind: 'uid', level: 'series' },
  Modality: { col: 'se.modality', kind: 'text', level: 'series' },
  SeriesNumber: { col: 'se.series_number', kind: 'int', level: 'series' },
  SeriesDescription: { col: 'se.description', kind: 'ci', level: 'series' },
  SOPInstanceUID: { col: 'i.sop_uid', kind: 'uid', level: 'instance' },
  SOPClassUID: { col: 'i.sop_class', kind: 'uid', level: 'instance' },
  InstanceNumber: { col: 'i.instance_number', kind: 'int', level: 'instance' },
};
const LEVEL_RANK: Record<Level, number> = { study: 0, series: 1, instance: 2 };

export class FolderPacs implements Pacs {
  readonly kind = 'folder' as const;
  readonly root: string;
  private readonly storeKey: string;
  private readonly durable: boolean;

  constructor(private readonly db: Db, config: FolderPacsConfig) {
    this.root = resolve(config.path);
    this.storeKey = config.name ?? this.root;
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
      this.index(info, size, rel);
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

  private index(info: Part10Info, size: number, rel: string): void {
    const s = this.storeKey;
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO folder_study (store, study_uid, patient_id, patient_name, patient_birth_date, patient_sex,
          study_date, study_time, accession, description, study_id, referring)
        VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
        ON CONFLICT (store, study_uid) DO UPDATE SET patient_id=excluded.patient_id, patient_name=excluded.patient_name,
          patient_birth_date=excluded.patient_birth_date, patient_sex=excluded.patient_sex, study_date=excluded.study_date,
          study_time=excluded.study_time, accession=excluded.accession, description=excluded.description,
          study_id=excluded.study_id, referring=excluded.referring`)
        .run(s, info.studyInstanceUid, info.patientId, info.patientName, info.patientBirthDate, info.patientSex,
          info.studyDate, info.studyTime, info.accessionNumber, info.studyDescription, info.studyId, info.referringPhysicianName);
      this.db.prepare(`INSERT INTO folder_series (store, series_uid, study_uid, modality, series_number, description)
        VALUES (?,?,?,?,?,?)
        ON CONFLICT (store, series_uid) DO UPDATE SET study_uid=excluded.study_uid, modality=excluded.modality,
          series_number=excluded.series_number, description=excluded.description`)
        .run(s, info.seriesInstanceUid, info.studyInstanceUid, info.modality, info.seriesNumber ?? null, info.seriesDescription);
      this.db.prepare(`INSERT OR REPLACE INTO folder_instance (store, sop_uid, series_uid, study_uid, sop_class, transfer_syntax,
          instance_number, frames, rows, columns, size, path, pixel_offset, added_at)
        VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
        .run(s, info.sopInstanceUid, info.seriesInstanceUid, info.studyInstanceUid, info.sopClassUid, info.transferSyntaxUid,
          info.instanceNumber ?? null, info.numberOfFrames, info.rows ?? null, info.columns ?? null, size, rel,
          info.pixelDataOffset ?? null, new Date().toISOString());
    })();
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
    const rows = this.instances(ref);
    const s = this.storeKey;
    this.db.transaction(() => {
      const del = this.db.prepare('DELETE FROM folder_instance WHERE store = ? AND sop_uid = ?');
      for (const r of rows) del.run(s, r.sop_uid);
      this.db.prepare(`DELETE FROM folder_series WHERE store = ? AND NOT EXISTS
        (SELECT 1 FROM folder_instance i WHERE i.store = folder_series.store AND i.series_uid = folder_series.series_uid)`).run(s);
      this.db.prepare(`DELETE FROM folder_study WHERE store = ? AND NOT EXISTS
        (SELECT 1 FROM folder_series se WHERE se.store = folder_study.store AND se.study_uid = folder_study.study_uid)`).run(s);
    })();
    for (const r of rows) await rm(join(this.root, r.path), { force: true });
    if (ref.series && !ref.instance) await rm(join(this.root, ref.study, ref.series), { recursive: true, force: true }).catch(() => undefined);
    if (!ref.series) await rm(join(this.root, ref.study), { recursive: true, force: true }).catch(() => undefined);
    return rows.length;
  }

  /** Instances of a ref, in series then instance-number order. */
  instances(ref: DicomRef): InstanceRow[] {
    for (const u of [ref.study, ref.series, ref.instance]) if (u !== undefined && !validUid(u)) return [];
    let sql = `SELECT i.* FROM folder_instance i LEFT JOIN folder_series se ON se.store = i.store AND se.series_uid = i.series_uid
      WHERE i.store = ? AND i.study_uid = ?`;
    const args: unknown[] = [this.storeKey, ref.study];
    if (ref.series) { sql += ' AND i.series_uid = ?'; args.push(ref.series); }
    if (ref.instance) { sql += ' AND i.sop_uid = ?'; args.push(ref.instance); }
    sql += ' ORDER BY se.series_number IS NULL, se.series_number, i.series_uid, i.instance_number IS NULL, i.instance_number, i.sop_uid';
    return this.db.prepare(sql).all(...args) as InstanceRow[];
  }

  private where(level: Level, keys: QueryKeys, args: unknown[]): string {
    const conds: string[] = ['st.store = ?'];
    args.push(this.storeKey);
    for (const [rawKey, rawValue] of Object.entries(keys)) {
      const key = KEYWORD_BY_TAG[rawKey.toUpperCase()] ?? rawKey;
      const spec = KEYS[key];
      const value = String(rawValue ?? '').trim();
      if (!spec || value === '' || value === '*') continue;
      if (LEVEL_RANK[spec.level] > LEVEL_RANK[level]) continue; // not a matching key at this level
      switch (spec.kind) {
        case 'uid': {
          const list = value.split(/[\\,]/).map((u) => u.trim()).filter(Boolean);
          conds.push(`${spec.col} IN (${list.map(() => '?').join(',')})`);
          args.push(...list);
          break;
        }
        case 'date': {
          const m = /^(\d{8})?(-)?(\d{8})?$/.exec(value.replace(/[.]/g, ''));
          if (!m) { conds.push('0'); break; }
          if (!m[2]) { conds.push(`${spec.col} = ?`); args.push(m[1] ?? ''); break; }
          if (m[1]) { conds.push(`${spec.col} >= ?`); args.push(m[1]); }
          if (m[3]) { conds.push(`${spec.col} <> '' AND ${spec.col} <= ?`); args.push(m[3]); }
          break;
        }
        case 'int':
          conds.push(`${spec.col} = ?`);
          args.push(parseInt(value, 10));
          break;
        case 'modalities': {
          const list = value.split(/[\\,]/).map((u) => u.trim()).filter(Boolean);
          conds.push(`EXISTS (SELECT 1 FROM folder_series m WHERE m.store = st.store AND m.study_uid = st.study_uid AND m.modality IN (${list.map(() => '?').join(',')}))`);
          args.push(...list);
          break;
        }
        case 'ci':
          conds.push(`${spec.col} LIKE ? ESCAPE '\\'`);
          args.push(likePattern(value));
          break;
        default:
          if (/[*?]/.test(value)) { conds.push(`${spec.col} LIKE ? ESCAPE '\\'`); args.push(likePattern(value)); } else { conds.push(`${spec.col} = ?`); args.push(value); }
      }
    }
    return conds.join(' AND ');
  }

  private page(opts: QueryOptions, args: unknown[]): string {
    args.push(opts.limit !== undefined ? Math.max(0, Math.floor(opts.limit)) : -1, Math.max(0, Math.floor(opts.offset ?? 0)));
    return ' LIMIT ? OFFSET ?';
  }

  async findStudies(keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    const args: unknown[] = [];
    const where = this.where('study', keys, args);
    const sql = `SELECT st.*,
        (SELECT COUNT(*) FROM folder_series x WHERE x.store = st.store AND x.study_uid = st.study_uid) AS n_series,
        (SELECT COUNT(*) FROM folder_instance x WHERE x.store = st.store AND x.study_uid = st.study_uid) AS n_instances,
        (SELECT GROUP_CONCAT(DISTINCT x.modality) FROM folder_series x WHERE x.store = st.store AND x.study_uid = st.study_uid AND x.modality <> '') AS modalities
      FROM folder_study st WHERE ${where} ORDER BY st.study_date DESC, st.study_time DESC, st.study_uid${this.page(opts, args)}`;
    return (this.db.prepare(sql).all(...args) as Record<string, unknown>[]).map(studyJson);
  }

  async findSeries(study: string | undefined, keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    const args: unknown[] = [];
    const where = this.where('series', study ? { ...keys, StudyInstanceUID: study } : keys, args);
    const sql = `SELECT se.*, st.*, se.description AS series_description,
        (SELECT COUNT(*) FROM folder_instance x WHERE x.store = se.store AND x.series_uid = se.series_uid) AS n_instances
      FROM folder_series se JOIN folder_study st ON st.store = se.store AND st.study_uid = se.study_uid
      WHERE ${where} ORDER BY se.series_number IS NULL, se.series_number, se.series_uid${this.page(opts, args)}`;
    return (this.db.prepare(sql).all(...args) as Record<string, unknown>[]).map(seriesJson);
  }

  async findInstances(study: string | undefined, series: string | undefined, keys: QueryKeys, opts: QueryOptions = {}): Promise<DicomJson[]> {
    const args: unknown[] = [];
    const k = { ...keys };
    if (study) k.StudyInstanceUID = study;
    if (series) k.SeriesInstanceUID = series;
    const where = this.where('instance', k, args);
    const sql = `SELECT i.*, se.modality, se.series_number, st.patient_id, st.patient_name, st.study_date, st.accession
      FROM folder_instance i JOIN folder_series se ON se.store = i.store AND se.series_uid = i.series_uid
      JOIN folder_study st ON st.store = i.store AND st.study_uid = i.study_uid
      WHERE ${where} ORDER BY se.series_number IS NULL, se.series_number, i.series_uid, i.instance_number IS NULL, i.instance_number, i.sop_uid${this.page(opts, args)}`;
    return (this.db.prepare(sql).all(...args) as Record<string, unknown>[]).map(instanceJson);
  }

  async *retrieve(ref: DicomRef, opts: RetrieveOptions): AsyncGenerator<InstancePart> {
    const rows = this.instances(ref);
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
    const [row] = this.instances(ref);
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
    const rows = this.instances(ref);
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
    // the Db belongs to the caller
  }
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  } catch { /* some filesystems refuse fsync on directories */ }
}

type Row = Record<string, unknown>;
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
