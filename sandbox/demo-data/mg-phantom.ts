// Synthetic breast for one mammography view: 16-bit words, 12 bits stored, MONOCHROME2, "for
// presentation". A phantom, not a patient. Ported from the team's reference mg-phantom.js.
// The chest wall is at column 0 or at the last column (`chestWallAtLeft`); MLO views get a pectoral
// muscle. Orientation marks (value 4095, in the air near the top of the chest-wall side) let a test
// read the displayed orientation from a screenshot: right breast → ONE block, left breast → TWO
// blocks; CC blocks are twice as wide as MLO blocks.

export interface PhantomOptions {
  rows: number;
  cols: number;
  laterality: 'L' | 'R';
  view: 'CC' | 'MLO';
  seed: number;
  lesion: boolean;
  chestWallAtLeft: boolean;
}

export function mgPhantom(o: PhantomOptions): Buffer {
  const { rows, cols, laterality: lat, view } = o;
  let seed = o.seed >>> 0 || 1;
  const rnd = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const noiseLayer = (cell: number) => {
    const gr = Math.ceil(rows / cell) + 2;
    const gc = Math.ceil(cols / cell) + 2;
    const g = new Float32Array(gr * gc);
    for (let i = 0; i < g.length; i++) g[i] = rnd();
    return (r: number, c: number) => {
      const y = r / cell, x = c / cell, y0 = y | 0, x0 = x | 0, fy = y - y0, fx = x - x0;
      const sy = fy * fy * (3 - 2 * fy), sx = fx * fx * (3 - 2 * fx);
      const a = g[y0 * gc + x0], b = g[y0 * gc + x0 + 1], c2 = g[(y0 + 1) * gc + x0], d = g[(y0 + 1) * gc + x0 + 1];
      return (a * (1 - sx) + b * sx) * (1 - sy) + (c2 * (1 - sx) + d * sx) * sy;
    };
  };
  const s = Math.min(rows, cols) / 2560;
  const layers: [(r: number, c: number) => number, number][] = [
    [noiseLayer(Math.max(8, 400 * s)), 0.45], [noiseLayer(Math.max(4, 120 * s)), 0.3],
    [noiseLayer(Math.max(2, 35 * s)), 0.17], [noiseLayer(Math.max(1, 9 * s)), 0.08],
  ];
  const depth = cols * (view === 'CC' ? 0.62 : 0.68);
  const half = rows * (view === 'CC' ? 0.4 : 0.46);
  const cy = rows * (view === 'CC' ? 0.5 : 0.56);
  const calc: [number, number, number][] = [];
  const cd = depth * (0.35 + 0.3 * rnd()), cyy = cy + half * (rnd() - 0.5) * 0.6;
  for (let i = 0; i < 9; i++) calc.push([cd + (rnd() - 0.5) * 60 * s, cyy + (rnd() - 0.5) * 60 * s, (1.5 + 2 * rnd()) * s + 1]);
  const mass = o.lesion ? [depth * 0.45, cy - half * 0.2, 70 * s + 8] : null;
  const px = new Uint16Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const d = o.chestWallAtLeft ? c : cols - 1 - c;
      const ex = d / depth, ey = (r - cy) / half;
      const q = ex * ex + ey * ey;
      let v = 60 + 20 * rnd();
      if (q < 1) {
        const thick = Math.sqrt(1 - q);
        let n = 0;
        for (const [f, w] of layers) n += w * f(r, c);
        let t = 900 + 1700 * thick + 900 * Math.max(0, n - 0.35) * thick;
        if (view === 'MLO') {
          const pm = 1 - d / (depth * 0.45) - r / (rows * 0.55);
          if (pm > 0) t += 500 + 400 * Math.min(1, pm * 6);
        }
        for (const [md, my, mr] of calc) if ((d - md) ** 2 + (r - my) ** 2 < mr * mr) t += 1200;
        if (mass) {
          const dd = Math.sqrt((d - mass[0]) ** 2 + (r - mass[1]) ** 2);
          if (dd < mass[2] * 1.6) t += 650 * Math.max(0, Math.min(1, (mass[2] * 1.6 - dd) / (mass[2] * 0.6)));
        }
        if (q > 0.985) t *= 1.08;
        v = t + 25 * (rnd() - 0.5);
      }
      px[r * cols + c] = Math.max(0, Math.min(4095, Math.round(v)));
    }
  }
  const blockW = Math.round(cols * (view === 'CC' ? 0.12 : 0.06));
  const gap = Math.round(cols * 0.05);
  const first = Math.round(cols * 0.03);
  const starts = lat === 'R' ? [first] : [first, first + blockW + gap];
  for (let r = Math.round(rows * 0.02); r < Math.round(rows * 0.08); r++) {
    for (const st of starts) for (let d = st; d < st + blockW; d++) px[r * cols + (o.chestWallAtLeft ? d : cols - 1 - d)] = 4095;
  }
  return Buffer.from(px.buffer);
}
