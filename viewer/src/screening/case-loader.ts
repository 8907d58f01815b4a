// A case's images for the worklist: its viewer session (current study + priors), the MG views of the
// current study and of the prior shown below it, and the images fetched into Cornerstone's cache ahead
// of the reader, so that "next case" only draws.
import { cache, imageLoader } from '@cornerstonejs/core';
import { loadSession, type Session, type StudyRef } from '../api.js';
import { loadSeries } from '../dicomweb.js';
import { listSeries } from '../dicom-json.js';
import { mgItems, type MgItem } from '../mg-items.js';
import type { Case } from './types.js';

export interface LoadedCase {
  session: Session;
  current?: StudyRef;
  prior?: StudyRef;
  currentItems: MgItem[];
  priorItems: MgItem[];
  /** every image of the hanging is in the cache (or has failed) */
  images: Promise<void>;
}

async function studyItems(session: Session, ref: StudyRef | undefined): Promise<MgItem[]> {
  if (!ref) return [];
  const root = session.dicomWebRoot;
  const list = await listSeries(root, ref.studyUid);
  return mgItems(await Promise.all(list.map((x) => loadSeries(root, ref.studyUid, x.seriesUid))));
}

/** The prior hung below: the batch's first prior the session holds, else the newest earlier MG study. */
function pickPrior(session: Session, c: Case, current?: StudyRef): StudyRef | undefined {
  const ok = (x: StudyRef) => x.status === 'available' && x.studyUid !== current?.studyUid;
  for (const uid of c.priorStudyUids) { const p = session.studies.find((x) => x.studyUid === uid && ok(x)); if (p) return p; }
  return session.studies.filter((x) => ok(x) && x.modalities.includes('MG') && (!current || x.date <= current.date)).sort((a, b) => b.date.localeCompare(a.date))[0];
}

export class CaseLoader {
  private loaded = new Map<string, Promise<LoadedCase>>();
  /** sessions whose images have all been fetched (or have failed) */
  private cached = new Set<string>();
  constructor(private readonly cpu: () => boolean) {}

  /** The case's session and views; its images are requested at once (`images` settles when all are cached). */
  load(c: Case): Promise<LoadedCase> {
    const id = c.sessionId!;
    let p = this.loaded.get(id);
    if (!p) {
      p = (async () => {
        const session = await loadSession(id);
        const current = session.studies.find((x) => x.current && x.status === 'available') ?? (c.studyUid ? session.studies.find((x) => x.studyUid === c.studyUid) : undefined);
        const prior = pickPrior(session, c, current);
        const [currentItems, priorItems] = await Promise.all([studyItems(session, current), studyItems(session, prior).catch(() => [])]);
        const ids = [...currentItems, ...priorItems].map((m) => m.imageId);
        // the CPU renderer asks for RGBA images: the same options, so the cached image is the one it draws
        const options = { priority: 0, requestType: 'prefetch', useRGBA: this.cpu() } as never;
        const images = Promise.allSettled(ids.map((x) => imageLoader.loadAndCacheImage(x, options))).then(() => { if (this.loaded.get(id) === p) this.cached.add(id); });
        return { session, current, prior, currentItems, priorItems, images };
      })();
      p.catch(() => this.loaded.delete(id)); // tried again when the case is shown again
      this.loaded.set(id, p);
    }
    return p;
  }

  isCached(sessionId: string): boolean { return this.cached.has(sessionId); }

  /** Drops the cases not in `keep` (their images leave the cache: a mammography case is tens of MB decoded). */
  retain(keep: Set<string>): void {
    for (const [id, p] of this.loaded) {
      if (keep.has(id)) continue;
      this.loaded.delete(id);
      this.cached.delete(id);
      void p.then((lc) => { for (const m of [...lc.currentItems, ...lc.priorItems]) if (cache.getImageLoadObject(m.imageId)) cache.removeImageLoadObject(m.imageId); }, () => undefined);
    }
  }
}
