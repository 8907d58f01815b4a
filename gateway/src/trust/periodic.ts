// One periodic refresh (CRLs, the allow-list, expired PSC sessions): a timer that does not hold the
// process open, whose failed run is logged rather than left as an unhandled rejection (which would
// stop the box), and that the owner stops on close.

/** Runs `run` every `intervalMs` (the first run is the caller's); returns the function that stops it. */
export function startPeriodic(intervalMs: number, run: () => Promise<unknown>, onError: (err: unknown) => void): () => void {
  const timer = setInterval(() => {
    run().catch(onError);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
