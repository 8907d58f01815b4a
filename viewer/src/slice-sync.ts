// Two-way slice synchronisation of coplanar stacks shown side by side (comparison). Whichever viewport
// the user works in (last wheel, click or key press there) leads: its new image moves the others to the
// image at the same position. Only the leader's images are followed, so the moves made on the others
// never come back as echoes, even when their images arrive late or out of order.
import { Enums, getRenderingEngine, metaData, type StackViewport, type Types } from '@cornerstonejs/core';

interface Plane { imagePositionPatient?: number[]; imageOrientationPatient?: number[]; frameOfReferenceUID?: string }

interface Stack {
  id: string;
  element: HTMLDivElement;
  /** each image's position along the stack normal (mm), in image order */
  positions: number[];
  /** every image has a position: the stack can follow */
  placed: boolean;
  /** where the stack stood when the link was made: the registration of two frames of reference */
  origin: number;
  frameOfReference?: string;
}

const plane = (imageId: string) => metaData.get('imagePlaneModule', imageId) as Plane | undefined;

export class SliceSync {
  private readonly stacks: Stack[];
  private leader: string;
  /** removes every listener the link added */
  private readonly links = new AbortController();

  /**
   * Links viewports `ids` of `engineId`, showing coplanar stacks, as they stand now. `active` names the
   * viewport keyboard scrolling acts on.
   */
  constructor(private readonly engineId: string, ids: string[], private readonly active: () => string | undefined) {
    const engine = getRenderingEngine(engineId)!;
    const vps = ids.map((id) => engine.getViewport(id) as StackViewport);
    const normal = normalOf(plane(vps[0].getCurrentImageId())?.imageOrientationPatient);
    this.stacks = vps.map((vp) => {
      const positions = vp.getImageIds().map((imageId) => along(normal, plane(imageId)?.imagePositionPatient));
      return {
        id: vp.id, element: vp.element as HTMLDivElement, positions, placed: positions.length > 0 && positions.every(Number.isFinite),
        origin: positions[vp.getCurrentImageIdIndex()], frameOfReference: plane(vp.getCurrentImageId())?.frameOfReferenceUID,
      };
    });
    this.leader = ids[0];
    const { signal } = this.links;
    for (const s of this.stacks) {
      const lead = () => { this.leader = s.id; };
      s.element.addEventListener('wheel', lead, { capture: true, passive: true, signal });
      s.element.addEventListener('pointerdown', lead, { capture: true, signal });
      s.element.addEventListener(Enums.Events.STACK_NEW_IMAGE, (e) => this.follow(s, (e as CustomEvent<Types.EventTypes.StackNewImageEventDetail>).detail.imageIdIndex), { signal });
    }
    document.addEventListener('keydown', () => { const a = this.active(); if (a && this.stacks.some((s) => s.id === a)) this.leader = a; }, { capture: true, signal });
  }

  private follow(from: Stack, index: number): void {
    if (from.id !== this.leader || !Number.isFinite(from.positions[index])) return;
    const engine = getRenderingEngine(this.engineId);
    for (const to of this.stacks) {
      if (to === from || !to.placed) continue;
      // same frame of reference: the same place; otherwise the same move from where both stood
      const target = from.frameOfReference && from.frameOfReference === to.frameOfReference
        ? from.positions[index]
        : to.origin + (from.positions[index] - from.origin);
      const k = nearest(to.positions, target);
      const vp = engine?.getViewport(to.id) as StackViewport | undefined;
      if (vp && k !== vp.getCurrentImageIdIndex()) void vp.setImageIdIndex(k);
    }
  }

  destroy(): void {
    this.links.abort();
  }
}

function normalOf(iop?: number[]): number[] {
  if (!iop || iop.length < 6) return [0, 0, 1];
  const [a, b, c, d, e, f] = iop;
  return [b * f - c * e, c * d - a * f, a * e - b * d];
}

function along(n: number[], ipp?: number[]): number {
  return ipp && ipp.length >= 3 ? ipp[0] * n[0] + ipp[1] * n[1] + ipp[2] * n[2] : NaN;
}

function nearest(positions: number[], target: number): number {
  let best = 0;
  for (let i = 1; i < positions.length; i++) if (Math.abs(positions[i] - target) < Math.abs(positions[best] - target)) best = i;
  return best;
}
