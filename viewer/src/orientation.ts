// Orientation markers: the patient direction at each edge of a displayed image (pure).
const AXES: [string, string][] = [['L', 'R'], ['P', 'A'], ['H', 'F']]; // +x, -x / +y, -y / +z, -z

/** DICOM letters for a direction cosine vector, strongest axis first (e.g. "LP"). */
export function letters(v: number[]): string {
  const order = [0, 1, 2].sort((a, b) => Math.abs(v[b]) - Math.abs(v[a]));
  let out = '';
  for (const i of order) {
    if (Math.abs(v[i]) < 0.25) continue;
    out += v[i] > 0 ? AXES[i][0] : AXES[i][1];
  }
  return out;
}

export function opposite(s: string): string {
  const o: Record<string, string> = { L: 'R', R: 'L', A: 'P', P: 'A', H: 'F', F: 'H' };
  return s.split('').map((c) => o[c] ?? c).join('');
}

export interface EdgeLabels { left: string; right: string; top: string; bottom: string }

/**
 * Edge labels from the row/column directions (DICOM letters: row = direction of increasing column,
 * column = direction of increasing row), after the display flips.
 */
export function edgeLabels(row: string, col: string, flipH: boolean, flipV: boolean): EdgeLabels {
  let right = row, left = opposite(row), bottom = col, top = opposite(col);
  if (flipH) [left, right] = [right, left];
  if (flipV) [top, bottom] = [bottom, top];
  return { left, right, top, bottom };
}

/** Edge labels after the image is turned `degrees` clockwise on screen (a multiple of 90). */
export function rotateLabels(e: EdgeLabels, degrees: number): EdgeLabels {
  let out = e;
  for (let q = ((Math.round(degrees / 90) % 4) + 4) % 4; q > 0; q--) out = { top: out.left, right: out.top, bottom: out.right, left: out.bottom };
  return out;
}

/** Row/column letters from ImageOrientationPatient, or from PatientOrientation when there is none. */
export function rowColLetters(iop?: number[], patientOrientation?: string[]): [string, string] | undefined {
  if (iop && iop.length >= 6) return [letters(iop.slice(0, 3)), letters(iop.slice(3, 6))];
  if (patientOrientation && patientOrientation.length >= 2) return [patientOrientation[0], patientOrientation[1]];
  return undefined;
}
