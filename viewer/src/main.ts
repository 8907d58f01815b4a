// Viewer entry, deliberately small: it asks for the session, the first study's series list and their
// metadata at once, then loads the viewer proper (Cornerstone: megabytes of script to evaluate and a
// WebGL context to create), so the answers arrive while that work is done instead of after it.
import { firstStudy, prefetchJson, sessionUrl, type Session } from './api.js';
import { seriesListUrl, seriesMetadataUrl, seriesRows, type DicomJson } from './dicom-json.js';
import { startDecodeWorker } from './decode-worker.js';

const t0 = performance.now();
performance.mark('viewer-entry');
const id = new URLSearchParams(location.search).get('session');
if (id) {
  startDecodeWorker();
  prefetchJson<Session>(sessionUrl(id)).then(async (session) => {
    const first = firstStudy(session);
    if (!first) return;
    const rows = seriesRows(await prefetchJson<DicomJson[]>(seriesListUrl(session.dicomWebRoot, first.studyUid), 'application/dicom+json'));
    for (const r of rows) void prefetchJson(seriesMetadataUrl(session.dicomWebRoot, first.studyUid, r.seriesUid), 'application/dicom+json');
  }).catch(() => undefined); // the viewer asks again and shows the error
}
void import('./app.js').then((app) => app.start(t0));
