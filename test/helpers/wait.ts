// Waiting on an observable condition instead of sleeping a fixed time.

/**
 * Polls `fn` every `intervalMs` until it returns a truthy value, and returns that value. After
 * `timeoutMs` throws `timed out after N ms waiting for <what>`; `what` may be a function, to say in
 * the failure what was last seen.
 */
export async function waitFor<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
  what: string | (() => string) = 'condition',
  intervalMs = 20,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
