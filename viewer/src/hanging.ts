// Mammography hanging protocol (pure: no DOM, no Cornerstone).
//
// Display convention (radiology, IHE Mammography Image profile / ACR): the right breast is shown on
// the viewer's LEFT, the left breast on the viewer's RIGHT, as mirror images "back to back": both
// chest walls meet in the middle of the screen and the nipples point outwards. CC views have the
// lateral side up, MLO views the head (pectoral muscle) up. Top row RCC | LCC, bottom row RMLO | LMLO.
//
// Whether an image must be mirrored does not follow from its laterality alone: modalities store
// right-breast images either already mirrored (PatientOrientation P\L, chest wall at the right edge,
// the IHE convention) or not (A\L, chest wall at the left edge). So the flips are derived from
// PatientOrientation (0020,0020): a right-breast image needs its rows to run towards Posterior
// (chest wall on the right of its viewport), a left-breast image towards Anterior.

export type Laterality = 'R' | 'L';
export type MgViewName = 'CC' | 'MLO' | 'ML' | 'LM' | 'XCCL' | 'OTHER';

export interface MgImageInfo {
  laterality?: Laterality;
  view: MgViewName;
  /** PatientOrientation (0020,0020): [row direction, column direction] */
  orientation?: [string, string];
}

const VIEW_CODES: Record<string, MgViewName> = {
  '399162004': 'CC', '399368009': 'MLO', '399260004': 'ML', '399352003': 'LM', '399192003': 'XCCL',
};

export function classifyMg(input: { imageLaterality?: string; laterality?: string; viewPosition?: string; viewCode?: string; patientOrientation?: string[] }): MgImageInfo {
  const latRaw = (input.imageLaterality || input.laterality || '').trim().toUpperCase();
  const laterality = latRaw === 'R' || latRaw === 'L' ? latRaw : undefined;
  let view: MgViewName = 'OTHER';
  if (input.viewCode && VIEW_CODES[input.viewCode]) view = VIEW_CODES[input.viewCode];
  else if (input.viewPosition) {
    const vp = input.viewPosition.trim().toUpperCase();
    view = (['CC', 'MLO', 'ML', 'LM', 'XCCL'] as string[]).includes(vp) ? (vp as MgViewName) : 'OTHER';
  }
  const po = input.patientOrientation;
  const orientation = po && po.length >= 2 ? [po[0].toUpperCase(), po[1].toUpperCase()] as [string, string] : undefined;
  return { laterality, view, orientation };
}

/** Flips needed to show the image by the convention above. */
export function mgFlips(info: MgImageInfo): { flipHorizontal: boolean; flipVertical: boolean } {
  if (!info.laterality || !info.orientation) return { flipHorizontal: false, flipVertical: false };
  const [row, col] = info.orientation;
  const wantRow = info.laterality === 'R' ? 'P' : 'A';
  const opposite = info.laterality === 'R' ? 'A' : 'P';
  const flipHorizontal = !row.includes(wantRow) && row.includes(opposite);
  let flipVertical = false;
  if (info.view === 'CC' || info.view === 'XCCL') {
    // lateral side up, so rows run downward towards the medial side (towards the other breast)
    const medial = info.laterality === 'R' ? 'L' : 'R';
    const lateral = info.laterality;
    flipVertical = !col.includes(medial) && col.includes(lateral);
  } else {
    flipVertical = !col.includes('F') && col.includes('H');
  }
  return { flipHorizontal, flipVertical };
}

export type HangingMode = 'four' | 'cop-CC' | 'cop-MLO' | 'over-prior';
export interface Slot<T> { item?: T; label: string }

/**
 * Places images in a 2×2 grid (index 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).
 * 'four': RCC | LCC over RMLO | LMLO of the current study. 'cop-*': one view, current over prior.
 * 'over-prior' (screening second reading): a 2×4 grid, RCC | LCC | RMLO | LMLO of the current study
 * over the same four views of the prior, each pair of a view back to back.
 */
export function hangMammo<T extends { info: MgImageInfo }>(current: T[], prior: T[] | undefined, mode: HangingMode, priorLabel: (view: string) => string = (v) => `${v} · précédent`): Slot<T>[] {
  const find = (list: T[] | undefined, lat: Laterality, view: MgViewName) =>
    list?.find((x) => x.info.laterality === lat && x.info.view === view);
  if (mode === 'over-prior' && prior) {
    const row = (list: T[], label: (v: string) => string) => (['CC', 'MLO'] as const).flatMap((v) =>
      (['R', 'L'] as const).map((lat) => ({ item: find(list, lat, v), label: label(`${lat}${v}`) })));
    return [...row(current, (v) => v), ...row(prior, priorLabel)];
  }
  if (mode === 'four' || !prior) {
    return [
      { item: find(current, 'R', 'CC'), label: 'RCC' },
      { item: find(current, 'L', 'CC'), label: 'LCC' },
      { item: find(current, 'R', 'MLO'), label: 'RMLO' },
      { item: find(current, 'L', 'MLO'), label: 'LMLO' },
    ];
  }
  const v: MgViewName = mode === 'cop-CC' ? 'CC' : 'MLO';
  return [
    { item: find(current, 'R', v), label: `R${v}` },
    { item: find(current, 'L', v), label: `L${v}` },
    { item: find(prior, 'R', v), label: priorLabel(`R${v}`) },
    { item: find(prior, 'L', v), label: priorLabel(`L${v}`) },
  ];
}

/** The MG view an image shows, as its label reads ("RCC", "LMLO"), or undefined when it is not lateralised. */
export function viewLabel(info: MgImageInfo): string | undefined {
  return info.laterality ? `${info.laterality}${info.view === 'OTHER' ? '' : info.view}` : undefined;
}

export function nextHangingMode(mode: HangingMode, hasPrior: boolean): HangingMode {
  if (!hasPrior) return 'four';
  return mode === 'four' ? 'cop-CC' : mode === 'cop-CC' ? 'cop-MLO' : 'four';
}
