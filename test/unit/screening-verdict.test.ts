// The worklist's pure pieces: the verdict built from what the reader typed (and the French reason
// when something is missing), the location words, and the hanging of the current study over its prior.
import t from 'tap';
import { buildVerdict, describeVerdict, draftFrom, emptyDraft, parseLocation } from '../../viewer/src/screening/verdict.js';
import { hangMammo, type MgImageInfo } from '../../viewer/src/hanging.js';

t.test('locations: quadrants, retro-areolar and clock hours as the API names them', async (t) => {
  t.equal(parseLocation('qse'), 'QSE');
  t.equal(parseLocation(' QII '), 'QII');
  t.equal(parseLocation('RA'), 'rétro-aréolaire');
  t.equal(parseLocation('rétro-aréolaire'), 'rétro-aréolaire');
  t.equal(parseLocation('Central'), 'central');
  t.equal(parseLocation('10h'), '10');
  t.equal(parseLocation('3'), '3');
  t.equal(parseLocation('13'), undefined, 'no 13 o’clock');
  t.equal(parseLocation('0h'), undefined);
  t.equal(parseLocation('QSX'), undefined);
});

t.test('normal, technical recall, positive: the API body, or what is missing', async (t) => {
  const normal = buildVerdict(emptyDraft(), 'r1', 1234.6);
  t.same(normal, { input: { requestId: 'r1', timeSpentMs: 1235, quality: 'adequate', result: 'normal' } });

  const tech = { ...emptyDraft(), mode: 'technical' as const };
  t.match(buildVerdict(tech, 'r2', 1), { problem: /incidence/ }, 'technical recall needs the views to redo');
  tech.views = ['L-MLO', 'R-CC'];
  t.same(buildVerdict(tech, 'r2', 1), { input: { requestId: 'r2', timeSpentMs: 1, quality: 'insufficient', viewsToRedo: ['R-CC', 'L-MLO'] } }, 'views in the hanging order');

  const pos = { ...emptyDraft(), mode: 'positive' as const, comment: '  à revoir ' };
  t.match(buildVerdict(pos, 'r3', 1), { problem: /au moins un sein/ });
  pos.right = { acr: 4, location: 'qse', signs: [] };
  t.match(buildVerdict(pos, 'r3', 1), { problem: /Sein droit : indiquez au moins un signe/ });
  pos.right.signs = ['calcifications', 'mass'];
  pos.left = { location: '2h', signs: ['asymmetry'] };
  t.match(buildVerdict(pos, 'r3', 1), { problem: /Sein gauche : catégorie ACR/ }, 'a breast started but not finished is not dropped silently');
  pos.left.acr = 3;
  const built = buildVerdict(pos, 'r3', 1);
  t.same(built, { input: {
    requestId: 'r3', timeSpentMs: 1, comment: 'à revoir', quality: 'adequate', result: 'positive',
    right: { acr: 4, location: 'QSE', signs: ['mass', 'calcifications'] }, left: { acr: 3, location: '2', signs: ['asymmetry'] },
  } });
  if (!('input' in built)) return;
  t.equal(describeVerdict(built.input), 'Positif — sein droit ACR 4, QSE, masse, calcifications ; sein gauche ACR 3, 2 h, asymétrie (« à revoir »)');
  const again = draftFrom({ ...built.input, outcome: 'positive', readerRpps: '1', readerName: 'x', recordedAt: '' });
  t.equal(again.mode, 'positive', 'an amended verdict opens in its own form');
  t.same(again.right, { acr: 4, location: 'QSE', signs: ['mass', 'calcifications'] });
});

t.test('screening hanging: RCC | LCC | RMLO | LMLO over the same views of the prior', async (t) => {
  const item = (laterality: 'R' | 'L', view: 'CC' | 'MLO', study: string) => ({ info: { laterality, view } as MgImageInfo, id: `${study}-${laterality}${view}` });
  const views = (study: string) => [item('L', 'MLO', study), item('R', 'CC', study), item('R', 'MLO', study), item('L', 'CC', study)];
  const slots = hangMammo(views('cur'), views('prior'), 'over-prior', (v) => `${v} · précédent`);
  t.same(slots.map((x) => x.item?.id), ['cur-RCC', 'cur-LCC', 'cur-RMLO', 'cur-LMLO', 'prior-RCC', 'prior-LCC', 'prior-RMLO', 'prior-LMLO']);
  t.same(slots.map((x) => x.label).slice(3, 5), ['LMLO', 'RCC · précédent']);
  const missing = hangMammo(views('cur'), views('prior').filter((x) => x.id !== 'prior-LCC'), 'over-prior');
  t.equal(missing[5].item, undefined, 'a missing prior view leaves its place empty');
  t.equal(hangMammo(views('cur'), undefined, 'over-prior').length, 4, 'without a prior: the four views');
});
