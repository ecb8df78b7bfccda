// The selection panel: how many items are selected, how many of each category, and a gallery of the
// first ones. Also the polygon test behind the programmatic lasso.
import type { Coloring } from "./colors";
import { fillGallery } from "./gallery";

const GALLERY_SIZE = 60;
const COUNTS_SHOWN = 25;

export class SelectionPanel {
  private readonly count = document.getElementById("selection-count") as HTMLElement;
  private readonly counts = document.getElementById("selection-counts") as HTMLTableElement;
  private readonly gallery = document.getElementById("selection-gallery") as HTMLElement;
  private readonly buttons = [...document.querySelectorAll<HTMLButtonElement>("#export button")];
  private generation = 0;

  constructor(private readonly thumbKind: string | null, private readonly onPick: (row: number) => void) {
    this.buttons.forEach((button) => (button.disabled = true));
  }

  /** Show `rows` (ascending) with counts by the categories of `coloring` when it has any. */
  async show(rows: number[], coloring: Coloring, columnName: string | null): Promise<void> {
    const generation = ++this.generation;
    this.count.textContent = rows.length ? `${rows.length.toLocaleString()} items` : "none";
    this.buttons.forEach((button) => (button.disabled = rows.length === 0));
    this.showCounts(rows, coloring, columnName);
    if (!rows.length) {
      this.gallery.replaceChildren();
      return;
    }
    const shown = rows.slice(0, GALLERY_SIZE).map((row) => ({ row }));
    const staging = document.createElement("div");
    await fillGallery(staging, shown, this.thumbKind, this.onPick);
    if (generation !== this.generation) return;
    this.gallery.classList.toggle("text-only", this.thumbKind === null);
    this.gallery.replaceChildren(...staging.children);
  }

  private showCounts(rows: number[], coloring: Coloring, columnName: string | null): void {
    this.counts.replaceChildren();
    if (coloring.kind !== "category" || !rows.length) return;
    const tally = new Map<number, number>();
    for (const row of rows) {
      const code = coloring.codes[row];
      tally.set(code, (tally.get(code) ?? 0) + 1);
    }
    const caption = this.counts.createCaption();
    caption.textContent = `by ${columnName}`;
    const names = [...coloring.categories, "missing"];
    [...tally.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, COUNTS_SHOWN)
      .forEach(([code, count]) => {
        const line = this.counts.insertRow();
        line.dataset.category = names[code];
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = coloring.palette[code];
        line.insertCell().append(swatch, ` ${names[code]}`);
        line.insertCell().textContent = count.toLocaleString();
      });
  }
}

/** Whether (x, y) lies inside the polygon (even-odd rule; points on an edge may go either way). */
export function insidePolygon(x: number, y: number, polygon: [number, number][]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
