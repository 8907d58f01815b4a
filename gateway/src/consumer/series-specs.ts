// Bridges the session model (studies → series → instances from the KOS) and the cache's series specs.
import type { SessionStudy } from './dmp-search.js';
import type { SeriesSpec } from './study-cache.js';

export function seriesSpecs(study: SessionStudy): SeriesSpec[] {
  return study.series.filter((s) => s.retrieveUrl).map((s) => toSpec(study, s));
}

export function seriesSpec(study: SessionStudy, seriesUid: string): SeriesSpec | undefined {
  const s = study.series.find((x) => x.seriesUid === seriesUid && x.retrieveUrl);
  return s && toSpec(study, s);
}

/** The series of a study holding an instance. */
export function seriesOfInstance(study: SessionStudy, sop: string): SeriesSpec | undefined {
  const s = study.series.find((x) => x.retrieveUrl && x.instances.some((i) => i.sopInstanceUid === sop));
  return s && toSpec(study, s);
}

function toSpec(study: SessionStudy, s: SessionStudy['series'][number]): SeriesSpec {
  return {
    source: study.source,
    kosUid: study.kosUid,
    studyUid: study.studyUid,
    seriesUid: s.seriesUid,
    retrieveUrl: s.retrieveUrl!,
    expected: s.instances.map((i) => i.sopInstanceUid),
    patientIds: study.patientIds ?? [], // sessions made before the KOS patient was kept: nothing matches
  };
}
