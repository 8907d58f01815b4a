// Entry of the screening pages: the batches list, or with ?batch=ID the reading worklist (which
// brings Cornerstone: the batches page stays light).
import { startDecodeWorker } from '../decode-worker.js';

const batch = new URLSearchParams(location.search).get('batch');
if (batch) {
  startDecodeWorker();
  void import('./worklist.js').then((m) => m.startWorklist(batch));
} else {
  void import('./batches.js').then((m) => m.startBatchesPage());
}
