// Turns a column into one small integer per point and the list of colours those integers index,
// so that categories and numbers both draw through regl-scatterplot's categorical colouring.
import type { ColumnInfo } from "./api";

const MISSING_COLOR = "#c4c8ce";
const PLAIN_COLOR = "#3b6fb6";
const NUMBER_BINS = 256;

const FIRST_CATEGORY_COLORS = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#393b79",
];
// Viridis at ten evenly spaced stops; the ramp interpolates between them.
const VIRIDIS_STOPS = [
  "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725",
];

export interface Coloring {
  /** Colour index of every point (the value regl-scatterplot reads as `valueA`). */
  codes: Float32Array;
  /** The colours the codes index; the last one is for missing values. */
  palette: string[];
  kind: "plain" | "category" | "number";
  /** Category names (category) or [min, max] (number). */
  categories: string[];
  range: [number, number];
}

/** The colour of category `index`: a fixed list first, then evenly spread hues. */
function categoryColor(index: number): string {
  if (index < FIRST_CATEGORY_COLORS.length) return FIRST_CATEGORY_COLORS[index];
  const hue = (index * 137.508) % 360;
  const lightness = 42 + ((index * 7) % 3) * 10;
  return hslToHex(hue, 62, lightness);
}

/** Viridis at `t` in [0, 1]. */
function rampColor(t: number): string {
  const position = Math.min(Math.max(t, 0), 1) * (VIRIDIS_STOPS.length - 1);
  const low = Math.floor(position);
  const high = Math.min(low + 1, VIRIDIS_STOPS.length - 1);
  const a = hexToRgb(VIRIDIS_STOPS[low]);
  const b = hexToRgb(VIRIDIS_STOPS[high]);
  const f = position - low;
  return rgbToHex(a.map((value, i) => value + (b[i] - value) * f) as [number, number, number]);
}

/** The CSS gradient of the numeric ramp, for the legend. */
export function rampGradient(): string {
  return `linear-gradient(to right, ${VIRIDIS_STOPS.join(", ")})`;
}

/** One colour for every point. */
export function plainColoring(n: number): Coloring {
  return { codes: new Float32Array(n), palette: [PLAIN_COLOR, MISSING_COLOR], kind: "plain", categories: [], range: [0, 0] };
}

/** Colour codes for a category column's int16 codes (-1 = missing). */
export function categoryColoring(values: ArrayLike<number>, info: ColumnInfo): Coloring {
  const categories = info.categories ?? [];
  const missing = categories.length;
  const codes = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    codes[i] = value >= 0 && value < missing ? value : missing;
  }
  const palette = categories.map((_, index) => categoryColor(index));
  palette.push(MISSING_COLOR);
  return { codes, palette, kind: "category", categories, range: [0, 0] };
}

/** Colour codes for a float column (NaN = missing), binned linearly between its minimum and maximum. */
export function numberColoring(values: ArrayLike<number>): Coloring {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (Number.isFinite(value)) {
      if (value < low) low = value;
      if (value > high) high = value;
    }
  }
  const codes = new Float32Array(values.length);
  const span = high > low ? high - low : 1;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    codes[i] = Number.isFinite(value)
      ? Math.min(NUMBER_BINS - 1, Math.floor(((value - low) / span) * NUMBER_BINS))
      : NUMBER_BINS;
  }
  const palette = Array.from({ length: NUMBER_BINS }, (_, bin) => rampColor(bin / (NUMBER_BINS - 1)));
  palette.push(MISSING_COLOR);
  if (low > high) [low, high] = [NaN, NaN];
  return { codes, palette, kind: "number", categories: [], range: [low, high] };
}

function hexToRgb(hex: string): [number, number, number] {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

function rgbToHex(rgb: [number, number, number]): string {
  return `#${rgb.map((value) => Math.round(value).toString(16).padStart(2, "0")).join("")}`;
}

function hslToHex(hue: number, saturation: number, lightness: number): string {
  const s = saturation / 100;
  const l = lightness / 100;
  const chroma = s * Math.min(l, 1 - l);
  const channel = (n: number) => {
    const k = (n + hue / 30) % 12;
    return 255 * (l - chroma * Math.max(-1, Math.min(k - 3, 9 - k, 1)));
  };
  return rgbToHex([channel(0), channel(8), channel(4)]);
}
