// "Exporter": a PNG of the active viewport with its annotations and overlay text burned in (patient
// identity, study, image, window), made in the browser from Cornerstone's canvas and recorded by the box (who exported
// which image, the PNG's hash); and the active series as a DICOM zip, streamed by the box from its
// cache (the box audits the download).
import type { StackViewport } from '@cornerstonejs/core';
import type { Cell } from './grid.js';
import { request, sessionBase, type Session } from './api.js';

function save(href: string, filename: string): void {
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
}

/** Draws the cell's corner overlays (as on screen) on the capture, light text on a dark halo. */
function burnOverlays(ctx: CanvasRenderingContext2D, cell: Cell, w: number, h: number): void {
  const px = Math.max(12, Math.round(h / 45));
  ctx.font = `${px}px sans-serif`;
  ctx.fillStyle = '#fff';
  ctx.shadowColor = '#000';
  ctx.shadowBlur = 3;
  const line = px * 1.25;
  const corner = (text: string, right: boolean, bottom: boolean) => {
    const lines = text.split('\n').filter(Boolean);
    ctx.textAlign = right ? 'right' : 'left';
    lines.forEach((l, i) => {
      const y = bottom ? h - 8 - (lines.length - 1 - i) * line : 8 + px + i * line;
      ctx.fillText(l, right ? w - 8 : 8, y);
    });
  };
  const o = cell.overlays;
  corner(o.tl.innerText, false, false);
  corner(o.tr.innerText, true, false);
  corner(o.bl.innerText, false, true);
  corner(o.br.innerText, true, true);
}

/** Draws the viewport's annotation layer (Cornerstone's SVG: measurements) over the image. */
async function burnAnnotations(ctx: CanvasRenderingContext2D, element: HTMLElement, w: number, h: number): Promise<void> {
  const svg = element.querySelector('svg.svg-layer') as SVGSVGElement | null;
  if (!svg || !svg.childElementCount) return;
  const { width, height } = svg.getBoundingClientRect();
  const copy = svg.cloneNode(true) as SVGSVGElement;
  copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  copy.setAttribute('width', String(width));
  copy.setAttribute('height', String(height));
  copy.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(copy)], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    ctx.drawImage(img, 0, 0, w, h);
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** The PNG of a cell's viewport, its annotations and overlays burned in. */
export async function capturePng(cell: Cell, vp: StackViewport): Promise<Blob> {
  const src = vp.getCanvas();
  const out = document.createElement('canvas');
  out.width = src.width;
  out.height = src.height;
  const ctx = out.getContext('2d')!;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(src, 0, 0);
  await burnAnnotations(ctx, cell.element, out.width, out.height);
  burnOverlays(ctx, cell, out.width, out.height);
  return new Promise((resolve, reject) => out.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG encoding failed'))), 'image/png'));
}

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

/** Captures the cell, has the box record the export, then hands the PNG to the browser's download. */
export async function exportPng(session: Session, cell: Cell, vp: StackViewport): Promise<void> {
  const series = cell.series!;
  const imageId = vp.getCurrentImageId();
  const sop = series.instances.find((i) => imageId?.includes(`/instances/${i.sopUid}/`))?.sopUid;
  const blob = await capturePng(cell, vp);
  const sha256 = hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  // recorded first: an export the box could not audit does not happen
  await request(`${sessionBase(session)}/export/capture`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ studyUid: series.studyUid, seriesUid: series.seriesUid, ...(sop ? { sopInstanceUid: sop } : {}), sha256, bytes: blob.size }),
  });
  const url = URL.createObjectURL(blob);
  save(url, `capture-${series.modality}-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}.png`);
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The series of the cell as a DICOM zip (the box streams and audits it). */
export function exportZip(session: Session, cell: Cell): void {
  const s = cell.series!;
  save(`${sessionBase(session)}/export/studies/${encodeURIComponent(s.studyUid)}/series/${encodeURIComponent(s.seriesUid)}/dicom.zip`, `serie-${s.seriesUid}.zip`);
}
