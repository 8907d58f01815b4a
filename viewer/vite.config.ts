// Vite build of the built-in viewer: static files the gateway serves at /viewer/.
// Build traps (PEERS.md): module workers (`worker.format: 'es'`) for the codec worker, and the
// npm `events` package in place of Node's (vtk.js imports it; without it: "Class extends value undefined").
// xmlbuilder2 (vtk.js's XML mesh I/O, unused here) is replaced by a stub: see src/no-xml.ts.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('.', import.meta.url));
/** the folder of package `name` holding the resolved file (its package.json is not exported) */
const packageDir = (name: string, file: string) => file.slice(0, file.lastIndexOf(`node_modules/${name}/`) + `node_modules/${name}`.length);

export default defineConfig({
  root,
  base: '/viewer/',
  publicDir: false,
  resolve: {
    alias: [
      { find: 'events', replacement: require.resolve('events/') },
      { find: 'xmlbuilder2', replacement: fileURLToPath(new URL('./src/no-xml.ts', import.meta.url)) },
      // @cornerstonejs/utils and /metadata each nest the same dcmjs 0.52.0 (the root one is the
      // gateway's 0.51 pin): one copy in the bundle instead of two
      { find: 'dcmjs', replacement: packageDir('dcmjs', require.resolve('dcmjs', { paths: [packageDir('@cornerstonejs/metadata', require.resolve('@cornerstonejs/metadata'))] })) },
      // the image loader's decode worker, which the package does not export: main.ts starts it early
      { find: /^decode-image-frame-worker(?=\?)/, replacement: `${packageDir('@cornerstonejs/dicom-image-loader', require.resolve('@cornerstonejs/dicom-image-loader'))}/dist/esm/decodeImageFrameWorker.js` },
    ],
  },
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
    reportCompressedSize: false,
    // two pages: the viewer, and the screening batches and worklist (its own entry: the viewer's stays as light)
    rollupOptions: {
      input: { index: fileURLToPath(new URL('./index.html', import.meta.url)), screening: fileURLToPath(new URL('./screening.html', import.meta.url)) },
      // what the viewer's entry needs at once, in one chunk as before the second page (shared modules are split apart otherwise)
      output: { codeSplitting: { groups: [{ name: 'entry', test: /viewer[\\/]src[\\/](api|i18n|dicom-json|decode-worker)\.ts|vite[\\/](preload-helper|modulepreload-polyfill)|rolldown[\\/]runtime/ }] } },
    },
  },
});
