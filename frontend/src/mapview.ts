// The WebGL map: a regl-scatterplot whose point index is always the Atlas row, redrawn whenever the
// positions, colours or visible rows change (requests made while drawing are merged into one).
import createScatterplot from "regl-scatterplot";

export type Tool = "pan" | "lasso" | "box";

/** What the map shows: view positions in [-1, 1], colour codes, and which rows are visible. */
export interface Scene {
  x: Float32Array;
  y: Float32Array;
  codes: Float32Array;
  palette: string[];
  /** Visible rows in ascending order, or null for all. */
  visible: Int32Array | null;
  /** Reuse the hover index of the last draw: the positions did not move, or a drag is under way. */
  keepIndex?: boolean;
}

export interface MapEvents {
  select(rows: number[]): void;
  deselect(): void;
  pointOver(row: number): void;
  pointOut(row: number): void;
}

type Plot = ReturnType<typeof createScatterplot>;

/** True when this browser can give the map a WebGL context with float textures. */
export function webglAvailable(): boolean {
  try {
    const gl = document.createElement("canvas").getContext("webgl");
    if (!gl) return false;
    const floats = gl.getExtension("OES_texture_float") !== null;
    gl.getExtension("WEBGL_lose_context")?.loseContext(); // browsers allow only a few live contexts
    return floats;
  } catch {
    return false;
  }
}

function pointSizeFor(n: number): number {
  if (n <= 5_000) return 6;
  if (n <= 50_000) return 4;
  if (n <= 500_000) return 2.5;
  return 1.5;
}

export class MapView {
  readonly plot: Plot;
  private pending: Scene | null = null;
  private requested = 0;
  private draining = false;
  private waiters: { upTo: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private shownPalette: string[] | null = null;
  private shownVisible: Int32Array | null = null;
  private selection: number[] = [];

  constructor(readonly canvas: HTMLCanvasElement, n: number, events: MapEvents) {
    this.plot = createScatterplot({
      canvas,
      width: "auto",
      height: "auto",
      backgroundColor: [1, 1, 1, 1],
      pointSize: pointSizeFor(n),
      pointSizeSelected: 2,
      pointOutlineWidth: 2,
      pointColorActive: "#111827",
      pointColorHover: "#111827",
      opacity: n > 200_000 ? 0.5 : 0.85,
      opacityInactiveMax: 0.35,
      lassoColor: [0.15, 0.39, 0.92, 1],
      lassoInitiator: true,
      lassoMinDelay: 10,
      lassoMinDist: 2,
      deselectOnDblClick: true,
      deselectOnEscape: true,
      colorBy: "valueA",
    });
    this.plot.subscribe("select", ({ points }) => {
      this.selection = [...points];
      events.select(this.selection);
    });
    this.plot.subscribe("deselect", () => {
      this.selection = [];
      events.deselect();
    });
    this.plot.subscribe("pointOver", (row) => events.pointOver(row));
    this.plot.subscribe("pointOut", (row) => events.pointOut(row));
  }

  get supported(): boolean {
    return this.plot.isSupported;
  }

  /** Draw `scene` (after any draw in progress); resolves once it, or a scene requested later, is drawn. */
  show(scene: Scene): Promise<void> {
    // A scene replacing one that moved the points must rebuild the hover index too.
    this.pending = this.pending && !this.pending.keepIndex ? { ...scene, keepIndex: false } : scene;
    this.requested++;
    const done = this.drawn();
    if (!this.draining) void this.drain();
    return done;
  }

  /** Resolves once every scene requested so far is drawn (so a selection meets the current visible rows). */
  drawn(): Promise<void> {
    if (!this.draining && !this.pending) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ upTo: this.requested, resolve, reject }));
  }

  private async drain(): Promise<void> {
    this.draining = true;
    while (this.pending) {
      const scene = this.pending;
      const number = this.requested;
      this.pending = null;
      let failure: unknown = null;
      try {
        await this.drawNow(scene);
      } catch (error) {
        failure = error;
      }
      const finished = this.waiters.filter((waiter) => waiter.upTo <= number);
      this.waiters = this.waiters.filter((waiter) => waiter.upTo > number);
      for (const waiter of finished) {
        if (failure === null) waiter.resolve();
        else waiter.reject(failure);
      }
    }
    this.draining = false;
  }

  private async drawNow(scene: Scene): Promise<void> {
    if (scene.palette !== this.shownPalette) {
      await this.plot.set({ pointColor: scene.palette, colorBy: "valueA" });
      this.shownPalette = scene.palette;
    }
    const drawn = this.plot.get("isPointsDrawn");
    await this.plot.draw(
      { x: scene.x, y: scene.y, valueA: scene.codes },
      {
        zDataType: "categorical",
        preventFilterReset: drawn,
        spatialIndex: scene.keepIndex && drawn ? this.plot.get("spatialIndex") : undefined,
        select: this.selection,
      },
    );
    if (scene.visible !== this.shownVisible || !drawn) {
      if (scene.visible) await this.plot.filter(Array.from(scene.visible), { preventEvent: true });
      else if (this.shownVisible) await this.plot.unfilter({ preventEvent: true });
      this.shownVisible = scene.visible;
    }
    this.selection = [...this.plot.get("selectedPoints")];
  }

  /** Select `rows` without a select event (the caller updates the panels itself). */
  select(rows: number[]): number[] {
    if (rows.length) this.plot.select(rows, { preventEvent: true });
    else this.plot.deselect({ preventEvent: true });
    this.selection = [...this.plot.get("selectedPoints")];
    return this.selection;
  }

  selected(): number[] {
    return this.selection;
  }

  setTool(tool: Tool, orbit: boolean): void {
    this.canvas.dataset.tool = tool;
    this.plot.set({
      mouseMode: tool === "pan" ? "panZoom" : "lasso",
      lassoType: tool === "box" ? "rectangle" : "freeform",
      cameraIsFixed: orbit && tool === "pan",
    } as Parameters<Plot["set"]>[0]);
  }

  /** A row's position in client (page viewport) pixels, or null when it is not drawn. */
  screenPosition(row: number): [number, number] | null {
    const position = this.plot.getScreenPosition(row);
    if (!position) return null;
    const box = this.canvas.getBoundingClientRect();
    return [box.left + position[0], box.top + position[1]];
  }

  resetView(): Promise<void> {
    return this.plot.zoomToOrigin();
  }
}
