// Starts the viewer: reads the Atlas description, fills the toolbar, draws the default layer, and
// exposes `window.embedscope` so that tests and scripts can drive the page deterministically.
import "./style.css";
import { isStatic, loadMeta, type Meta } from "./api";
import { colorableColumns, defaultColorColumn, loadColumn } from "./columns";
import { exportSelection } from "./export";
import { attachGroupToggles } from "./groups";
import { webglAvailable, type Tool } from "./mapview";
import { loadLayer } from "./points";
import { attachSearch } from "./search";
import { attachTimeControls } from "./time";
import { Viewer } from "./viewer";

/** `window.embedscope`: drives the page without gestures. Rows are Atlas row numbers. */
export interface TestHook {
  /** Resolves after the first full render (rejects when the page cannot draw). */
  ready: Promise<void>;
  /** Select these rows (one row also lists its neighbours); resolves once the panels show it. */
  selectRows(rows: number[]): Promise<void>;
  /** Select the visible rows inside a polygon in data coordinates (view coordinates for 3D layers). */
  lasso(polygon: [number, number][]): Promise<void>;
  /** The selected rows, ascending. */
  selected(): number[];
  colorBy(name: string | null): Promise<void>;
  setLayer(name: string): Promise<void>;
  /** Move the time slider to a (fractional) frame index and draw it. */
  setFrame(frame: number): Promise<void>;
  /** Where a row is drawn, in client (viewport) pixels, for mouse events. */
  pointScreenPosition(row: number): [number, number] | null;
}

declare global {
  interface Window {
    embedscope?: TestHook;
  }
}

const status = document.getElementById("status") as HTMLElement;

function say(text: string): void {
  status.textContent = text;
  status.classList.remove("error");
}

function complain(error: unknown): void {
  status.textContent = error instanceof Error ? error.message : String(error);
  status.classList.add("error");
}

function fillSelect(select: HTMLSelectElement, options: [string, string][], value: string): void {
  select.replaceChildren(
    ...options.map(([optionValue, label]) => new Option(label, optionValue, false, optionValue === value)),
  );
}

function layerLabel(name: string, dims: number): string {
  return dims === 3 ? `${name} (3D)` : name;
}

async function start(): Promise<Viewer> {
  const canvas = document.getElementById("canvas") as HTMLCanvasElement;
  const meta: Meta = await loadMeta();
  const layerNames = Object.keys(meta.layers);
  if (!layerNames.length) throw new Error("the Atlas has no 2D or 3D map yet: run `embedscope map ATLAS` first");
  const firstLayer = meta.layers[meta.default_layer] ? meta.default_layer : layerNames[0];
  const firstColor = defaultColorColumn(meta);
  // Fetch the first map and colours while WebGL is being set up; the loaders keep what they fetched.
  void loadLayer(firstLayer, meta.layers[firstLayer].dims).catch(() => undefined);
  if (firstColor) void loadColumn(firstColor).catch(() => undefined);
  if (!webglAvailable()) {
    (document.getElementById("no-webgl") as HTMLElement).hidden = false;
    canvas.hidden = true;
    document.body.dataset.webgl = "0";
    throw new Error("WebGL is unavailable in this browser");
  }
  if (isStatic()) document.querySelector("#export button[data-export=parquet]")?.remove(); // needs the server
  const viewer = new Viewer(meta, canvas, complain);
  if (!viewer.map.supported) {
    (document.getElementById("no-webgl") as HTMLElement).hidden = false;
    document.body.dataset.webgl = "0";
    throw new Error("this browser's WebGL lacks float textures, which the map needs");
  }

  const layerSelect = document.getElementById("layer") as HTMLSelectElement;
  fillSelect(layerSelect, layerNames.map((name) => [name, layerLabel(name, meta.layers[name].dims)]), firstLayer);
  layerSelect.addEventListener("change", () => viewer.setLayer(layerSelect.value).catch(complain));

  const colorSelect = document.getElementById("color-by") as HTMLSelectElement;
  fillSelect(colorSelect, [["", "none"], ...colorableColumns(meta).map((name): [string, string] => [name, name])],
    firstColor ?? "");
  colorSelect.addEventListener("change", () => viewer.colorBy(colorSelect.value || null).catch(complain));

  document.querySelectorAll<HTMLButtonElement>(".tools button").forEach((button) => {
    button.addEventListener("click", () => {
      document.querySelectorAll(".tools button").forEach((other) => other.classList.toggle("active", other === button));
      viewer.setTool(button.dataset.tool as Tool);
    });
  });
  document.querySelectorAll<HTMLButtonElement>("#export button").forEach((button) => {
    button.addEventListener("click", () => {
      const rows = viewer.selected();
      exportSelection(button.dataset.export as string, rows)
        .then((name) => say(`exported ${rows.length.toLocaleString()} items to ${name}`), complain);
    });
  });
  attachSearch((rows, query) => {
    say(`${rows.length.toLocaleString()} items match "${query}"`);
    void viewer.selectRows(rows);
  }, complain);

  let timeControls: { set(t: number): void } | null = null;
  if (meta.frames) timeControls = attachTimeControls(meta.frames, (t) => viewer.setTime(t).catch(complain));

  await Promise.all([viewer.start(firstLayer, firstColor), viewer.useGroups()]);
  if (meta.groups) attachGroupToggles(meta.groups, (hidden) => viewer.hideGroups(hidden).catch(complain));
  say(`${meta.n.toLocaleString()} items${isStatic() ? " (static export)" : ""}`);

  Object.assign(hook, {
    selectRows: (rows) => viewer.selectRows(rows),
    lasso: (polygon) => viewer.lasso(polygon),
    selected: () => viewer.selected(),
    colorBy: (name) => {
      colorSelect.value = name ?? "";
      return viewer.colorBy(name);
    },
    setLayer: (name) => {
      layerSelect.value = name;
      return viewer.setLayer(name);
    },
    setFrame: (frame) => {
      timeControls?.set(frame);
      return viewer.setTime(frame);
    },
    pointScreenPosition: (row: number) => viewer.screenPosition(row),
  } satisfies Omit<TestHook, "ready">);
  return viewer;
}

const notReady = () => Promise.reject(new Error("the viewer is not ready yet"));
const hook: TestHook = {
  ready: Promise.resolve(),
  selectRows: notReady,
  lasso: notReady,
  selected: () => [],
  colorBy: notReady,
  setLayer: notReady,
  setFrame: notReady,
  pointScreenPosition: () => null,
};
window.embedscope = hook;
hook.ready = start().then(
  () => {
    document.body.dataset.ready = "1";
  },
  (error) => {
    document.body.dataset.ready = "error";
    complain(error);
    throw error;
  },
);
hook.ready.catch(() => undefined); // reported on the page; callers that await it see the error
