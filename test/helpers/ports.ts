// Free loopback ports for test servers (shared with the sandbox).
export { freePort } from '../../sandbox/ports.js';
