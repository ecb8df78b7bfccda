// The legend over the map: categories with their colours and counts (click one to hide or show its
// points), or the colour ramp with its range for a numeric column.
import { rampGradient, type Coloring } from "./colors";

const element = () => document.getElementById("legend") as HTMLElement;

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return "–";
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude >= 1e5 || magnitude < 1e-3) ? value.toExponential(2) : String(+value.toPrecision(4));
}

/** Show the legend of `coloring` for column `name`; `onToggle` receives the set of hidden codes. */
export function showLegend(
  name: string | null, coloring: Coloring, hidden: Set<number>, onToggle: (hidden: Set<number>) => void,
): void {
  const root = element();
  root.replaceChildren();
  if (!name || coloring.kind === "plain") return;
  const title = document.createElement("h3");
  title.textContent = name;
  root.append(title);
  if (coloring.kind === "number") {
    const ramp = document.createElement("div");
    ramp.className = "ramp";
    ramp.style.background = rampGradient();
    const labels = document.createElement("div");
    labels.className = "ramp-labels";
    for (const value of coloring.range) {
      const label = document.createElement("span");
      label.textContent = formatNumber(value);
      labels.append(label);
    }
    root.append(ramp, labels);
    return;
  }
  const counts = new Int32Array(coloring.palette.length);
  for (const code of coloring.codes) counts[code]++;
  const list = document.createElement("ul");
  const names = [...coloring.categories, "missing"];
  names.forEach((label, code) => {
    if (counts[code] === 0) return;
    const entry = document.createElement("li");
    entry.dataset.code = String(code);
    entry.title = "Click to hide or show these points";
    entry.classList.toggle("hidden", hidden.has(code));
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = coloring.palette[code];
    const text = document.createElement("span");
    text.className = "name";
    text.textContent = label;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = counts[code].toLocaleString();
    entry.append(swatch, text, count);
    entry.addEventListener("click", () => {
      if (hidden.has(code)) hidden.delete(code);
      else hidden.add(code);
      entry.classList.toggle("hidden", hidden.has(code));
      onToggle(hidden);
    });
    list.append(entry);
  });
  root.append(list);
}
