// The source role: publication (MLLP → outbox → KOS → DMP), corrections, IOCM, KOS-scoped peer
// access, report links. (Being built: issue #3.)
import type { RolePlugin } from '../box.js';

export const sourceRole: RolePlugin = async () => {};
