// Test harness (never used in production): runs a source box in this process from a config JSON file
// (argv[2]) so a test can SIGKILL it mid-publication. The step hook is wired here, from the
// environment of this harness only: with DRIMBOX_TEST_STOP_AT=<step> the box announces
// "STEP <step> <job>" on stdout when it reaches that step and then hangs there, waiting to be killed.
import { readFileSync } from 'node:fs';
import type { DrimboxConfig } from '../../gateway/src/config/schema.js';
import { startBox } from '../../gateway/src/box.js';
import { createLogger } from '../../gateway/src/log.js';
import { dmpService } from '../../gateway/src/dmp/service.js';
import { createSourceRole } from '../../gateway/src/source/role.js';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8')) as DrimboxConfig;
const stopAt = process.env.DRIMBOX_TEST_STOP_AT;

const box = await startBox(config, {
  logger: createLogger(config.log.level, config.box.name),
  plugins: [
    dmpService,
    createSourceRole({
      retryBaseMs: 100,
      maxRetryDelayMs: 300,
      pollMs: 100,
      stepHook: async (step, job) => {
        if (step !== stopAt) return;
        process.stdout.write(`STEP ${step} ${job.id}\n`);
        await new Promise(() => {}); // hang here until killed
      },
      onSettled: (job) => process.stdout.write(`SETTLED ${job.id} ${job.state}\n`),
    }),
  ],
});
process.stdout.write(`READY ${box.addresses.mllp.port}\n`);
process.on('SIGTERM', () => { void box.close().then(() => process.exit(0)); });
