// The search box: items whose id or metadata contains the text become the selection.
import { searchItems } from "./api";

const SEARCH_LIMIT = 1000;

/** Run a search on Enter; `onHits` receives the matching rows (possibly none). */
export function attachSearch(onHits: (rows: number[], query: string) => void, onError: (error: unknown) => void): void {
  const form = document.getElementById("search") as HTMLFormElement;
  const input = document.getElementById("search-input") as HTMLInputElement;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = input.value.trim();
    if (!query) return;
    searchItems(query, SEARCH_LIMIT).then((rows) => onHits(rows, query), onError);
  });
}
