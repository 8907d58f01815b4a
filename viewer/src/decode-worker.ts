// The image loader's decode worker, started by the small entry: a worker cannot start while the main
// thread evaluates Cornerstone and sets up rendering, so one started then is up only after the first
// frames have arrived, and they wait for it.
import DecodeWorker from 'decode-image-frame-worker?worker';

let early: Worker | undefined;

export function startDecodeWorker(): void {
  early ??= new DecodeWorker();
}

/** Hands out the early worker first, then new ones (the loader's pool may want several, or a replacement). */
export function decodeWorker(): Worker {
  const w = early ?? new DecodeWorker();
  early = undefined;
  return w;
}
