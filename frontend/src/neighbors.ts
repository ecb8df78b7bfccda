// The neighbour panel: the items nearest to a clicked item in the original vector space, nearest first.
import { loadItems, loadNeighbors } from "./api";
import { fillGallery } from "./gallery";

const NEIGHBOR_COUNT = 8;

export class NeighborPanel {
  private readonly section = document.getElementById("neighbors") as HTMLElement;
  private readonly title = document.getElementById("neighbors-of") as HTMLElement;
  private readonly list = document.getElementById("neighbors-list") as HTMLElement;
  private generation = 0;

  constructor(private readonly thumbKind: string | null, private readonly onPick: (row: number) => void) {}

  /** List the neighbours of `row` and return their rows (empty when superseded by a later call). */
  async show(row: number): Promise<number[]> {
    const generation = ++this.generation;
    const [found, [item]] = await Promise.all([loadNeighbors(row, NEIGHBOR_COUNT), loadItems([row])]);
    if (generation !== this.generation) return [];
    const entries = found.rows.map((other, index) => ({
      row: other,
      note: found.distances ? `d=${+found.distances[index].toPrecision(3)}` : undefined,
    }));
    const staging = document.createElement("ol");
    await fillGallery(staging, entries, this.thumbKind, this.onPick);
    if (generation !== this.generation) return [];
    this.title.textContent = item ? String(item.id) : String(row);
    this.section.dataset.row = String(row);
    this.list.classList.toggle("text-only", this.thumbKind === null);
    this.list.replaceChildren(...staging.children);
    this.section.hidden = false;
    return found.rows;
  }

  hide(): void {
    this.generation++;
    this.section.hidden = true;
    this.list.replaceChildren();
    delete this.section.dataset.row;
  }
}
