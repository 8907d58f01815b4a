// The e2e suite's view of the demo's 4-view MG generator (sandbox/demo-data/mg-study.ts): small
// studies whose orientation marks the pixel assertions read.
import { makeMgStudy as make, MG_VIEWS, type MgView } from '../../../sandbox/demo-data/mg-study.js';

export type MgViewLabel = MgView;
export { MG_VIEWS };

export interface MgFile { view: MgViewLabel; sopUid: string; chestWallAtLeft: boolean; buffer: Buffer }
export interface MgStudy { studyUid: string; seriesUid: string; files: MgFile[] }

export function makeMgStudy(o: { date?: string; seed?: number; rows?: number; cols?: number; rightUnmirrored?: boolean; patientId?: string; accession?: string } = {}): MgStudy {
  const s = make({ ...o, size: [o.rows ?? 832, o.cols ?? 640], lesion: 'none' });
  return {
    studyUid: s.studyInstanceUid,
    seriesUid: s.seriesInstanceUid,
    files: s.files.map((f) => ({ view: f.view, sopUid: f.sopInstanceUid, chestWallAtLeft: f.chestWallAtLeft, buffer: f.part10 })),
  };
}
