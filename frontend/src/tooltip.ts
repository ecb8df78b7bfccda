// The hover card: an item's thumbnail(s) and metadata next to the point under the mouse.
import { loadItems, thumbUrl, type Item } from "./api";

const MAX_FIELDS = 12;
const OFFSET = 14;

export class Tooltip {
  private readonly element = document.getElementById("tooltip") as HTMLElement;
  private readonly cache = new Map<number, Item>();
  private current = -1;

  constructor(private readonly thumbKinds: string[]) {}

  /** Show item `row` at client position `at` (the point's place on screen). */
  async show(row: number, at: [number, number]): Promise<void> {
    this.current = row;
    const item = this.cache.get(row) ?? (await loadItems([row]))[0];
    if (this.current !== row || !item) return;
    this.cache.set(row, item);
    if (this.cache.size > 500) this.cache.delete(this.cache.keys().next().value as number);
    this.render(item);
    this.place(at);
  }

  hide(row?: number): void {
    if (row !== undefined && row !== this.current) return;
    this.current = -1;
    this.element.hidden = true;
  }

  private render(item: Item): void {
    const parts: HTMLElement[] = [];
    if (this.thumbKinds.length) {
      const thumbs = document.createElement("div");
      thumbs.className = "thumbs";
      for (const kind of this.thumbKinds) {
        const image = document.createElement("img");
        image.alt = `${kind} thumbnail`;
        image.dataset.kind = kind;
        image.src = thumbUrl(kind, item.row);
        thumbs.append(image);
      }
      parts.push(thumbs);
    }
    const fields = document.createElement("dl");
    const entries = Object.entries(item).filter(([name]) => name !== "row").slice(0, MAX_FIELDS);
    for (const [name, value] of entries) {
      const term = document.createElement("dt");
      term.textContent = name;
      const description = document.createElement("dd");
      description.textContent = formatValue(value);
      fields.append(term, description);
    }
    parts.push(fields);
    this.element.replaceChildren(...parts);
    this.element.dataset.row = String(item.row);
    this.element.hidden = false;
  }

  private place([x, y]: [number, number]): void {
    const parent = (this.element.offsetParent as HTMLElement | null) ?? document.body;
    const box = parent.getBoundingClientRect();
    const width = this.element.offsetWidth;
    const height = this.element.offsetHeight;
    let left = x - box.left + OFFSET;
    let top = y - box.top + OFFSET;
    if (left + width > box.width) left = x - box.left - width - OFFSET;
    if (top + height > box.height) top = Math.max(0, box.height - height);
    this.element.style.left = `${Math.max(0, left)}px`;
    this.element.style.top = `${Math.max(0, top)}px`;
  }
}

function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(+value.toPrecision(5));
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
