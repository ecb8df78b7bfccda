// A map layer's positions, read from the points stream, and the scaling that puts them into the
// [-1, 1] square regl-scatterplot draws (one scale for every axis, so shapes keep their proportions).
import type { Table } from "apache-arrow";
import { loadArrow } from "./api";

export interface LayerPoints {
  name: string;
  dims: 2 | 3;
  x: Float32Array;
  y: Float32Array;
  z: Float32Array | null;
  /** Index into meta.frames of every row (sequence Atlases only). */
  frame: Int16Array | null;
  /** Index of every row's id among the distinct ids (sequence Atlases only). */
  track: Int32Array | null;
}

/** Centre and half-width of the data, to map data coordinates into [-1, 1]. */
export interface Scaling {
  center: [number, number, number];
  scale: number;
}

const MARGIN = 1.05;

function column<T>(table: Table, name: string): T | null {
  const child = table.getChild(name);
  return child ? (child.toArray() as T) : null;
}

const loaded = new Map<string, Promise<LayerPoints>>();

/** Layer `name` (2D or 3D) from the server or the static export, fetched once. */
export function loadLayer(name: string, dims: 2 | 3): Promise<LayerPoints> {
  let layer = loaded.get(name);
  if (!layer) {
    layer = fetchLayer(name, dims);
    layer.catch(() => loaded.delete(name));
    loaded.set(name, layer);
  }
  return layer;
}

async function fetchLayer(name: string, dims: 2 | 3): Promise<LayerPoints> {
  const table = await loadArrow(`points?layer=${encodeURIComponent(name)}`);
  const x = column<Float32Array>(table, "x");
  const y = column<Float32Array>(table, "y");
  if (!x || !y) throw new Error(`layer ${name} has no x and y columns`);
  return {
    name,
    dims,
    x,
    y,
    z: dims === 3 ? column<Float32Array>(table, "z") : null,
    frame: column<Int16Array>(table, "frame"),
    track: column<Int32Array>(table, "track"),
  };
}

/** The scaling that fits every finite point of the layer into [-1, 1] with a small margin. */
export function fitScaling(layer: LayerPoints): Scaling {
  const axes = layer.z ? [layer.x, layer.y, layer.z] : [layer.x, layer.y];
  const center: [number, number, number] = [0, 0, 0];
  const halves: number[] = [];
  axes.forEach((values, axis) => {
    let low = Infinity;
    let high = -Infinity;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value < low) low = value;
      if (value > high) high = value;
    }
    if (!(high >= low)) [low, high] = [0, 0];
    center[axis] = (low + high) / 2;
    halves.push((high - low) / 2);
  });
  // A 3D layer turns freely, so it must fit in the sphere around its box, not only the box.
  const half = layer.z ? Math.hypot(...halves) : Math.max(...halves);
  return { center, scale: (half > 0 ? half : 1) * MARGIN };
}

/** The 2D positions of a 2D layer in view coordinates. */
export function flatPositions(layer: LayerPoints, scaling: Scaling): { x: Float32Array; y: Float32Array } {
  const n = layer.x.length;
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  const [cx, cy] = scaling.center;
  for (let i = 0; i < n; i++) {
    x[i] = (layer.x[i] - cx) / scaling.scale;
    y[i] = (layer.y[i] - cy) / scaling.scale;
  }
  return { x, y };
}
