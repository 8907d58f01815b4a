// The folder store's index (study, series, instance rows keyed by store name) in the box database,
// through Kysely for both dialects. QIDO matching is built here from the keys DICOM allows.
import { sql, type Expression, type RawBuilder, type SqlBool } from 'kysely';
import type { Store } from '../store/database.js';
import type { DicomRef, QueryKeys, QueryOptions } from './pacs.js';
import type { Part10Info } from '../dicom/part10.js';

export interface InstanceRow {
  sop_uid: string; series_uid: string; study_uid: string; sop_class: string; transfer_syntax: string;
  instance_number: number | null; frames: number; rows: number | null; columns: number | null;
  size: number; path: string; pixel_offset: number | null;
}

export type Row = Record<string, unknown>;

const UID = /^[0-9]+(\.[0-9]+)*$/;
export function validUid(u: string): boolean {
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

/** pg answers COUNT and BIGINT as strings: every number read back goes through this */
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
function instanceRow(r: Row): InstanceRow {
  return {
    sop_uid: String(r.sop_uid), series_uid: String(r.series_uid), study_uid: String(r.study_uid), sop_class: String(r.sop_class),
    transfer_syntax: String(r.transfer_syntax), instance_number: r.instance_number === null ? null : num(r.instance_number),
    frames: num(r.frames), rows: r.rows === null ? null : num(r.rows), columns: r.columns === null ? null : num(r.columns),
    size: num(r.size), path: String(r.path), pixel_offset: r.pixel_offset === null ? null : num(r.pixel_offset),
  };
}

export class FolderIndex {
  constructor(private readonly store: Store, private readonly storeKey: string) {}

  private get db() { return this.store.db; }

  async index(info: Part10Info, size: number, rel: string): Promise<void> {
    const s = this.storeKey;
    const study = {
      patient_id: info.patientId, patient_name: info.patientName, patient_birth_date: info.patientBirthDate, patient_sex: info.patientSex,
      study_date: info.studyDate, study_time: info.studyTime, accession: info.accessionNumber, description: info.studyDescription,
      study_id: info.studyId, referring: info.referringPhysicianName,
    };
    const series = { study_uid: info.studyInstanceUid, modality: info.modality, series_number: info.seriesNumber ?? null, description: info.seriesDescription };
    const instance = {
      series_uid: info.seriesInstanceUid, study_uid: info.studyInstanceUid, sop_class: info.sopClassUid, transfer_syntax: info.transferSyntaxUid,
      instance_number: info.instanceNumber ?? null, frames: info.numberOfFrames, rows: info.rows ?? null, columns: info.columns ?? null, size, path: rel,
      pixel_offset: info.pixelDataOffset ?? null, added_at: new Date().toISOString(),
    };
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('folder_study').values({ store: s, study_uid: info.studyInstanceUid, ...study })
        .onConflict((oc) => oc.columns(['store', 'study_uid']).doUpdateSet(study)).execute();
      await trx.insertInto('folder_series').values({ store: s, series_uid: info.seriesInstanceUid, ...series })
        .onConflict((oc) => oc.columns(['store', 'series_uid']).doUpdateSet(series)).execute();
      await trx.insertInto('folder_instance').values({ store: s, sop_uid: info.sopInstanceUid, ...instance })
        .onConflict((oc) => oc.columns(['store', 'sop_uid']).doUpdateSet(instance)).execute();
    });
  }

  /** Index rows of a ref, in series then instance-number order. */
  async instances(ref: DicomRef): Promise<InstanceRow[]> {
    for (const u of [ref.study, ref.series, ref.instance]) if (u !== undefined && !validUid(u)) return [];
    let q = this.db.selectFrom('folder_instance as i')
      .leftJoin('folder_series as se', (j) => j.onRef('se.store', '=', 'i.store').onRef('se.series_uid', '=', 'i.series_uid'))
      .selectAll('i')
      .where('i.store', '=', this.storeKey).where('i.study_uid', '=', ref.study);
    if (ref.series) q = q.where('i.series_uid', '=', ref.series);
    if (ref.instance) q = q.where('i.sop_uid', '=', ref.instance);
    const rows = await q.orderBy(sql`se.series_number IS NULL`).orderBy('se.series_number').orderBy('i.series_uid')
      .orderBy(sql`i.instance_number IS NULL`).orderBy('i.instance_number').orderBy('i.sop_uid').execute();
    return rows.map((r) => instanceRow(r as Row));
  }

  /** Removes index rows (and series, studies left empty). */
  async remove(sops: string[]): Promise<void> {
    const s = this.storeKey;
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < sops.length; i += 500) {
        await trx.deleteFrom('folder_instance').where('store', '=', s).where('sop_uid', 'in', sops.slice(i, i + 500)).execute();
      }
      await trx.deleteFrom('folder_series').where('store', '=', s).where(({ not, exists, selectFrom }) => not(exists(
        selectFrom('folder_instance as i').select(sql`1`.as('one')).whereRef('i.store', '=', 'folder_series.store').whereRef('i.series_uid', '=', 'folder_series.series_uid'),
      ))).execute();
      await trx.deleteFrom('folder_study').where('store', '=', s).where(({ not, exists, selectFrom }) => not(exists(
        selectFrom('folder_series as se').select(sql`1`.as('one')).whereRef('se.store', '=', 'folder_study.store').whereRef('se.study_uid', '=', 'folder_study.study_uid'),
      ))).execute();
    });
  }

  /** The QIDO conditions of `keys` at `level` (unknown keys and keys of a lower level are ignored). */
  private where(level: Level, keys: QueryKeys): Expression<SqlBool> {
    const conds: RawBuilder<unknown>[] = [sql`st.store = ${this.storeKey}`];
    const pg = this.store.dialect === 'postgres';
    const like = (col: string, value: string, ci: boolean) => sql`${sql.ref(col)} ${sql.raw(ci && pg ? 'ILIKE' : 'LIKE')} ${likePattern(value)} ESCAPE '\\'`;
    for (const [rawKey, rawValue] of Object.entries(keys)) {
      const key = KEYWORD_BY_TAG[rawKey.toUpperCase()] ?? rawKey;
      const spec = KEYS[key];
      const value = String(rawValue ?? '').trim();
      if (!spec || value === '' || value === '*') continue;
      if (LEVEL_RANK[spec.level] > LEVEL_RANK[level]) continue; // not a matching key at this level
      const col = sql.ref(spec.col);
      switch (spec.kind) {
        case 'uid': {
          const list = value.split(/[\\,]/).map((u) => u.trim()).filter(Boolean);
          conds.push(sql`${col} IN (${sql.join(list)})`);
          break;
        }
        case 'date': {
          const m = /^(\d{8})?(-)?(\d{8})?$/.exec(value.replace(/[.]/g, ''));
          if (!m) { conds.push(sql`1 = 0`); break; }
          if (!m[2]) { conds.push(sql`${col} = ${m[1] ?? ''}`); break; }
          if (m[1]) conds.push(sql`${col} >= ${m[1]}`);
          if (m[3]) conds.push(sql`${col} <> '' AND ${col} <= ${m[3]}`);
          break;
        }
        case 'int': {
          const n = parseInt(value, 10);
          conds.push(Number.isFinite(n) ? sql`${col} = ${n}` : sql`1 = 0`);
          break;
        }
        case 'modalities': {
          const list = value.split(/[\\,]/).map((u) => u.trim()).filter(Boolean);
          conds.push(sql`EXISTS (SELECT 1 FROM folder_series m WHERE m.store = st.store AND m.study_uid = st.study_uid AND m.modality IN (${sql.join(list)}))`);
          break;
        }
        case 'ci':
          conds.push(like(spec.col, value, true));
          break;
        default:
          conds.push(/[*?]/.test(value) ? like(spec.col, value, false) : sql`${col} = ${value}`);
      }
    }
    return sql<SqlBool>`${sql.join(conds, sql` AND `)}`;
  }

  /** LIMIT/OFFSET: SQLite needs a LIMIT before an OFFSET (-1: none); PostgreSQL takes OFFSET alone. */
  private page<Q extends { limit(n: number): Q; offset(n: number): Q }>(q: Q, opts: QueryOptions): Q {
    const offset = Math.max(0, Math.floor(opts.offset ?? 0));
    if (opts.limit !== undefined) q = q.limit(Math.max(0, Math.floor(opts.limit)));
    else if (offset && this.store.dialect === 'sqlite') q = q.limit(-1);
    return offset ? q.offset(offset) : q;
  }

  async studies(keys: QueryKeys, opts: QueryOptions): Promise<Row[]> {
    const modalities = this.store.dialect === 'postgres'
      ? sql`(SELECT string_agg(DISTINCT x.modality, ',') FROM folder_series x WHERE x.store = st.store AND x.study_uid = st.study_uid AND x.modality <> '')`
      : sql`(SELECT GROUP_CONCAT(DISTINCT x.modality) FROM folder_series x WHERE x.store = st.store AND x.study_uid = st.study_uid AND x.modality <> '')`;
    const q = this.db.selectFrom('folder_study as st').selectAll('st').select([
      sql`(SELECT COUNT(*) FROM folder_series x WHERE x.store = st.store AND x.study_uid = st.study_uid)`.as('n_series'),
      sql`(SELECT COUNT(*) FROM folder_instance x WHERE x.store = st.store AND x.study_uid = st.study_uid)`.as('n_instances'),
      modalities.as('modalities'),
    ]).where(this.where('study', keys)).orderBy('st.study_date', 'desc').orderBy('st.study_time', 'desc').orderBy('st.study_uid');
    return (await this.page(q, opts).execute()) as Row[];
  }

  async series(keys: QueryKeys, opts: QueryOptions): Promise<Row[]> {
    const q = this.db.selectFrom('folder_series as se')
      .innerJoin('folder_study as st', (j) => j.onRef('st.store', '=', 'se.store').onRef('st.study_uid', '=', 'se.study_uid'))
      .selectAll('se').selectAll('st').select([
        'se.description as series_description',
        sql`(SELECT COUNT(*) FROM folder_instance x WHERE x.store = se.store AND x.series_uid = se.series_uid)`.as('n_instances'),
      ]).where(this.where('series', keys))
      .orderBy(sql`se.series_number IS NULL`).orderBy('se.series_number').orderBy('se.series_uid');
    return (await this.page(q, opts).execute()) as Row[];
  }

  async instanceRows(keys: QueryKeys, opts: QueryOptions): Promise<Row[]> {
    const q = this.db.selectFrom('folder_instance as i')
      .innerJoin('folder_series as se', (j) => j.onRef('se.store', '=', 'i.store').onRef('se.series_uid', '=', 'i.series_uid'))
      .innerJoin('folder_study as st', (j) => j.onRef('st.store', '=', 'i.store').onRef('st.study_uid', '=', 'i.study_uid'))
      .selectAll('i').select(['se.modality', 'se.series_number', 'st.patient_id', 'st.patient_name', 'st.study_date', 'st.accession'])
      .where(this.where('instance', keys))
      .orderBy(sql`se.series_number IS NULL`).orderBy('se.series_number').orderBy('i.series_uid')
      .orderBy(sql`i.instance_number IS NULL`).orderBy('i.instance_number').orderBy('i.sop_uid');
    return (await this.page(q, opts).execute()) as Row[];
  }
}
