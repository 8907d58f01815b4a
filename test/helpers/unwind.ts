// Starting a many-server test setup (the two-box network, the HA cluster): each server started
// registers its closer; if a later step fails, what was started is closed again, last first, so a
// failed start leaves no server running behind the failing test.

export type Closers = (() => Promise<unknown>)[];

/** Runs `build` with an empty closer list; on failure runs the closers in reverse and rethrows. */
export async function startOrUnwind<T>(build: (closers: Closers) => Promise<T>): Promise<T> {
  const closers: Closers = [];
  try {
    return await build(closers);
  } catch (e) {
    await closeAll(closers);
    throw e;
  }
}

/** Closes everything started, last first; a closer that fails does not stop the others. */
export async function closeAll(closers: Closers): Promise<void> {
  for (const c of closers.reverse()) await c().catch(() => undefined);
}
