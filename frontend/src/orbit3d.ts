// The orbit view of 3D layers: the points turn with a rotation matrix and are projected onto the
// screen plane (with a mild perspective) every time the user drags.
import type { LayerPoints, Scaling } from "./points";

const DRAG_RADIANS_PER_PIXEL = 0.008;
const CAMERA_DISTANCE = 4; // in view units; the points lie within the unit sphere

export interface Orbit {
  yaw: number;
  pitch: number;
}

export function initialOrbit(): Orbit {
  return { yaw: 0.6, pitch: -0.4 };
}

/** The rotation matrix (row-major 3x3) of turning by `yaw` about y, then by `pitch` about x. */
function rotationMatrix(orbit: Orbit): number[] {
  const [cy, sy] = [Math.cos(orbit.yaw), Math.sin(orbit.yaw)];
  const [cp, sp] = [Math.cos(orbit.pitch), Math.sin(orbit.pitch)];
  return [
    cy, 0, sy,
    sp * sy, cp, -sp * cy,
    -cp * sy, sp, cp * cy,
  ];
}

/** Screen-plane positions of every point of a 3D layer seen from `orbit`. */
export function projectPoints(
  layer: LayerPoints, scaling: Scaling, orbit: Orbit, into?: { x: Float32Array; y: Float32Array },
): { x: Float32Array; y: Float32Array } {
  const n = layer.x.length;
  const out = into ?? { x: new Float32Array(n), y: new Float32Array(n) };
  const m = rotationMatrix(orbit);
  const [cx, cy, cz] = scaling.center;
  const z = layer.z ?? new Float32Array(n);
  const inverse = 1 / scaling.scale;
  for (let i = 0; i < n; i++) {
    const px = (layer.x[i] - cx) * inverse;
    const py = (layer.y[i] - cy) * inverse;
    const pz = (z[i] - cz) * inverse;
    const depth = m[6] * px + m[7] * py + m[8] * pz;
    const perspective = (CAMERA_DISTANCE - 1) / (CAMERA_DISTANCE - depth);
    out.x[i] = (m[0] * px + m[1] * py + m[2] * pz) * perspective;
    out.y[i] = (m[3] * px + m[4] * py + m[5] * pz) * perspective;
  }
  return out;
}

/**
 * Turn the orbit while the user drags on `element` (plain drags only: Shift+drag still lassos).
 * `onTurn` runs once per animation frame while turning, `onRest` when the drag ends.
 */
export function attachOrbitDrag(
  element: HTMLElement, orbit: () => Orbit | null, onTurn: () => void, onRest: () => void,
): void {
  let last: [number, number] | null = null;
  let scheduled = false;
  element.addEventListener("pointerdown", (event) => {
    if (!orbit() || event.shiftKey || event.button !== 0 || element.dataset.tool !== "pan") return;
    last = [event.clientX, event.clientY];
    element.setPointerCapture(event.pointerId);
  });
  element.addEventListener("pointermove", (event) => {
    const current = orbit();
    if (!last || !current) return;
    current.yaw += (event.clientX - last[0]) * DRAG_RADIANS_PER_PIXEL;
    current.pitch = Math.max(-1.55, Math.min(1.55, current.pitch + (event.clientY - last[1]) * DRAG_RADIANS_PER_PIXEL));
    last = [event.clientX, event.clientY];
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(() => {
        scheduled = false;
        onTurn();
      });
    }
  });
  const stop = (event: PointerEvent) => {
    if (!last) return;
    last = null;
    if (element.hasPointerCapture(event.pointerId)) element.releasePointerCapture(event.pointerId);
    onRest();
  };
  element.addEventListener("pointerup", stop);
  element.addEventListener("pointercancel", stop);
}
