// A grid of items: each item's first thumbnail kind and its id (with an optional note, e.g. a distance).
import { loadItems, thumbUrl } from "./api";

export interface GalleryEntry {
  row: number;
  note?: string;
}

/**
 * Fill `container` with `entries` (their ids fetched in one request); `onPick` runs on a click.
 * Returns once the ids are in; the images load on their own.
 */
export async function fillGallery(
  container: HTMLElement, entries: GalleryEntry[], thumbKind: string | null, onPick?: (row: number) => void,
): Promise<void> {
  const items = await loadItems(entries.map((entry) => entry.row));
  const ids = new Map(items.map((item) => [item.row, String(item.id)]));
  const tag = container.tagName === "OL" || container.tagName === "UL" ? "li" : "figure";
  container.classList.toggle("text-only", thumbKind === null);
  container.replaceChildren(
    ...entries.map((entry) => {
      const cell = document.createElement(tag);
      cell.dataset.row = String(entry.row);
      const id = ids.get(entry.row) ?? String(entry.row);
      cell.title = entry.note ? `${id} (${entry.note})` : id;
      if (thumbKind !== null) {
        const image = document.createElement("img");
        image.loading = "lazy";
        image.alt = id;
        image.src = thumbUrl(thumbKind, entry.row);
        cell.append(image);
      }
      const label = document.createElement("div");
      label.className = "label";
      label.textContent = id;
      cell.append(label);
      if (entry.note) {
        const note = document.createElement("div");
        note.className = "label note";
        note.textContent = entry.note;
        cell.append(note);
      }
      if (onPick) cell.addEventListener("click", () => onPick(entry.row));
      return cell;
    }),
  );
}
