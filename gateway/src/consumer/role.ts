// The consumer role: contextual call, DMP search, peer client, study cache, viewer API.
// (Being built: issue #5.)
import type { RolePlugin } from '../box.js';

export const consumerRole: RolePlugin = async () => {};
