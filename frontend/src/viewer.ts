// The viewer's state and its one drawing path: layer positions (flat, orbiting or between frames),
// colours, visible rows and the selection, kept in step with the map and the panels.
import type { Meta } from "./api";
import { categoryColoring, numberColoring, plainColoring, type Coloring } from "./colors";
import { loadColumn } from "./columns";
import { showLegend } from "./legend";
import { MapView, type Tool } from "./mapview";
import { NeighborPanel } from "./neighbors";
import { attachOrbitDrag, initialOrbit, projectPoints, type Orbit } from "./orbit3d";
import { fitScaling, flatPositions, loadLayer, type LayerPoints, type Scaling } from "./points";
import { insidePolygon, SelectionPanel } from "./selection";
import { buildTimeline, frameAt, interpolate, type Timeline } from "./time";
import { Tooltip } from "./tooltip";

const GROUP_COLUMN = "group";

export class Viewer {
  readonly map: MapView;
  private readonly tooltip: Tooltip;
  private readonly panel: SelectionPanel;
  private readonly neighbors: NeighborPanel;
  private layer!: LayerPoints;
  private scaling!: Scaling;
  private base!: { x: Float32Array; y: Float32Array };
  private shown!: { x: Float32Array; y: Float32Array };
  private timeline: Timeline | null = null;
  private time = 0;
  private orbit: Orbit | null = null;
  private tool: Tool = "pan";
  private coloring: Coloring;
  private colorName: string | null = null;
  private hiddenCodes = new Set<number>();
  private groupCodes: ArrayLike<number> | null = null;
  private hiddenGroupCodes = new Set<number>();
  private visible: Int32Array | null = null;
  private selectionDone: Promise<void> = Promise.resolve();

  constructor(readonly meta: Meta, canvas: HTMLCanvasElement, private readonly report: (error: unknown) => void) {
    const kinds = Object.keys(meta.thumbs);
    const firstKind = kinds.length ? kinds[0] : null;
    this.coloring = plainColoring(meta.n);
    this.tooltip = new Tooltip(kinds);
    this.panel = new SelectionPanel(firstKind, (row) => void this.selectRows([row]));
    this.neighbors = new NeighborPanel(firstKind, (row) => void this.selectRows([row]));
    this.map = new MapView(canvas, meta.n, {
      select: (rows) => {
        this.selectionDone = this.selectionChanged(rows);
      },
      deselect: () => {
        this.selectionDone = this.selectionChanged([]);
      },
      pointOver: (row) => {
        const at = this.map.screenPosition(row);
        if (at) this.tooltip.show(row, at).catch(report);
      },
      pointOut: (row) => this.tooltip.hide(row),
    });
    attachOrbitDrag(canvas, () => this.orbit, () => void this.render({ keepIndex: true }), () => void this.render());
  }

  // ------------------------------------------------------------------ layers, colours, time, groups
  /** Open on `layer` coloured by `color` (both fetched at once, drawn once). */
  async start(layer: string, color: string | null): Promise<void> {
    await Promise.all([this.useLayer(layer), this.useColoring(color)]);
    this.updateVisible();
    await this.render();
    await this.map.resetView();
  }

  async setLayer(name: string): Promise<void> {
    await this.useLayer(name);
    this.updateVisible();
    await this.render();
    await this.map.resetView();
  }

  async colorBy(name: string | null): Promise<void> {
    await this.useColoring(name);
    this.updateVisible();
    await this.render({ keepIndex: true });
    await this.panel.show(this.selected(), this.coloring, this.colorName);
  }

  private async useLayer(name: string): Promise<void> {
    const info = this.meta.layers[name];
    if (!info) throw new Error(`no map layer ${name}`);
    this.layer = await loadLayer(name, info.dims);
    this.scaling = fitScaling(this.layer);
    this.orbit = info.dims === 3 ? initialOrbit() : null;
    document.getElementById("map")?.classList.toggle("orbit", this.orbit !== null);
    this.map.setTool(this.tool, this.orbit !== null);
    this.timeline = this.meta.frames && this.layer.frame && this.layer.track
      ? buildTimeline(this.layer, this.meta.frames.length)
      : null;
    this.base = this.positionsBeforeTime();
    this.shown = this.timeline ? { x: this.base.x.slice(), y: this.base.y.slice() } : this.base;
  }

  private async useColoring(name: string | null): Promise<void> {
    const info = name ? this.meta.columns[name] : undefined;
    if (name && (!info || info.type === "text")) throw new Error(`cannot colour by ${name}`);
    const values = name ? await loadColumn(name) : null;
    this.coloring = !values || !info
      ? plainColoring(this.meta.n)
      : info.type === "category" ? categoryColoring(values, info) : numberColoring(values);
    this.colorName = name;
    this.hiddenCodes = new Set();
    showLegend(name, this.coloring, this.hiddenCodes, () => {
      this.updateVisible();
      this.render({ keepIndex: true }).catch(this.report);
    });
  }

  async setTime(t: number): Promise<void> {
    if (!this.timeline) return;
    const before = frameAt(this.timeline, this.time);
    this.time = t;
    if (frameAt(this.timeline, t) !== before) this.updateVisible();
    await this.render();
  }

  async useGroups(): Promise<void> {
    const info = this.meta.columns[GROUP_COLUMN];
    if (!this.meta.groups || !info) return;
    this.groupCodes = await loadColumn(GROUP_COLUMN);
  }

  /** Hide the groups with these indices into meta.groups. */
  hideGroups(hidden: Set<number>): Promise<void> {
    const categories = this.meta.columns[GROUP_COLUMN]?.categories ?? [];
    const names = new Set([...hidden].map((index) => this.meta.groups?.[index]));
    this.hiddenGroupCodes = new Set(categories.flatMap((name, code) => (names.has(name) ? [code] : [])));
    this.updateVisible();
    return this.render({ keepIndex: true });
  }

  setTool(tool: Tool): void {
    this.tool = tool;
    this.map.setTool(tool, this.orbit !== null);
  }

  // ------------------------------------------------------------------ selection
  /** Select `rows`; a single row also brings up its nearest neighbours. */
  async selectRows(rows: number[]): Promise<void> {
    await this.map.drawn();
    this.selectionDone = this.selectionChanged(this.map.select(rows));
    return this.selectionDone;
  }

  /** Select the visible rows whose data position lies inside `polygon` (data coordinates of a 2D layer). */
  lasso(polygon: [number, number][]): Promise<void> {
    const flat = this.layer.dims === 2;
    const xs = flat ? this.layer.x : this.shown.x;
    const ys = flat ? this.layer.y : this.shown.y;
    const hits: number[] = [];
    const test = (row: number) => {
      if (insidePolygon(xs[row], ys[row], polygon)) hits.push(row);
    };
    if (this.visible) this.visible.forEach(test);
    else for (let row = 0; row < this.meta.n; row++) test(row);
    return this.selectRows(hits);
  }

  selected(): number[] {
    return [...this.map.selected()].sort((a, b) => a - b);
  }

  settled(): Promise<void> {
    return this.selectionDone;
  }

  private async selectionChanged(rows: number[]): Promise<void> {
    try {
      if (rows.length === 1) {
        const row = rows[0];
        const near = await this.neighbors.show(row);
        if (near.length) this.map.select([row, ...near]);
      } else {
        this.neighbors.hide();
      }
      await this.panel.show(this.selected(), this.coloring, this.colorName);
    } catch (error) {
      this.report(error);
    }
  }

  // ------------------------------------------------------------------ drawing
  /**
   * Draw the current state. `keepIndex` when the positions did not move (colours, visibility) or while
   * the orbit is dragged (the hover index is rebuilt when the drag ends).
   */
  async render({ keepIndex = false } = {}): Promise<void> {
    if (this.orbit) projectPoints(this.layer, this.scaling, this.orbit, this.timeline ? this.base : this.shown);
    if (this.timeline) interpolate(this.timeline, this.time, this.base.x, this.base.y, this.shown.x, this.shown.y);
    const selectedBefore = this.map.selected().length;
    await this.map.show({
      x: this.shown.x,
      y: this.shown.y,
      codes: this.coloring.codes,
      palette: this.coloring.palette,
      visible: this.visible,
      keepIndex,
    });
    // Hiding points drops them from the selection; the panel follows.
    if (this.map.selected().length !== selectedBefore) {
      await this.panel.show(this.selected(), this.coloring, this.colorName);
    }
  }

  /** A row's position on screen (client pixels), or null when it is not drawn. */
  screenPosition(row: number): [number, number] | null {
    return this.map.screenPosition(row);
  }

  private positionsBeforeTime(): { x: Float32Array; y: Float32Array } {
    if (!this.orbit) return flatPositions(this.layer, this.scaling);
    return projectPoints(this.layer, this.scaling, this.orbit);
  }

  /** Recompute the visible rows from the frame, the hidden categories and the hidden groups. */
  private updateVisible(): void {
    const codes = this.coloring.codes;
    const hiddenCodes = this.hiddenCodes;
    const groups = this.groupCodes;
    const hiddenGroups = this.hiddenGroupCodes;
    const frameRows = this.timeline ? this.timeline.rowsOf[frameAt(this.timeline, this.time)] : null;
    if (!frameRows && hiddenCodes.size === 0 && (!groups || hiddenGroups.size === 0)) {
      this.visible = null;
      return;
    }
    const keep = (row: number) =>
      !hiddenCodes.has(codes[row]) && !(groups && hiddenGroups.has(groups[row]));
    const kept: number[] = [];
    if (frameRows) {
      for (const row of frameRows) if (keep(row)) kept.push(row);
    } else {
      for (let row = 0; row < this.meta.n; row++) if (keep(row)) kept.push(row);
    }
    this.visible = Int32Array.from(kept);
  }
}
