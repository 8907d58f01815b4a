// Bridges the session model (studies → series → instances from the KOS) and the cache's series specs.
import type { SessionStudy } from './dmp-search.js';
import type { SeriesSpec } from './study-cache.js';

export function seriesSpecs(study: SessionStudy): SeriesSpec[] {
  return study.series
    .filter((s) => s.retrieveUrl)
    .map((s) => ({
      source: study.source,
      kosUid: study.kosUid,
      studyUid: study.studyUid,
      seriesUid: s.seriesUid,
      retrieveUrl: s.retrieveUrl!,
      expected: s.instances.map((i) => i.sopInstanceUid),
    }));
}

export function seriesSpec(study: SessionStudy, seriesUid: string): SeriesSpec | undefined {
  return seriesSpecs(study).find((s) => s.seriesUid === seriesUid);
}

/** The series of a study holding an instance. */
export function seriesOfInstance(study: SessionStudy, sop: string): SeriesSpec | undefined {
  return seriesSpecs(study).find((s) => s.expected.includes(sop));
}
