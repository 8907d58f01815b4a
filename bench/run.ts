// `npm run bench -- NAME`: runs one benchmark, which prints one JSON line on stdout.
const benches: Record<string, () => Promise<unknown>> = {
  'source-proxy': async () => (await import('./source-proxy.js')).run(),
  consumer: async () => (await import('./consumer.js')).run(),
  'peer-auth': async () => (await import('./peer-auth.js')).run(),
  screening: async () => (await import('./screening.js')).run(),
  viewer: async () => (await import('./viewer.js')).run(),
  'scale-out': async () => (await import('./scale-out.js')).run(),
};
const name = process.argv[2];
const bench = name ? benches[name] : undefined;
if (!bench) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}>`);
  process.exit(2);
}
const result = await bench();
console.log(JSON.stringify(result));
process.exit(0);
