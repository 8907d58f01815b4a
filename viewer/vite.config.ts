// Vite build of the built-in viewer: static files the gateway serves at /viewer/.
// Build traps (PEERS.md): module workers (`worker.format: 'es'`) for the codec worker, and the
// npm `events` package in place of Node's (vtk.js imports it; without it: "Class extends value undefined").
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/viewer/',
  publicDir: false,
  resolve: {
    alias: { events: require.resolve('events/') },
  },
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
    reportCompressedSize: false,
  },
});
