// Export of the selection: the server writes the file (and keeps a copy in the Atlas's selections/);
// a static export builds CSV, JSON, MiLoPYP coordinates and STAR in the browser instead.
import { exportOnServer, isStatic, staticItemsOf, type Item } from "./api";

const EXTENSIONS: Record<string, string> = {
  parquet: "parquet", csv: "csv", json: "json", "milopyp-coords": "txt", star: "star",
};
const STAR_RESERVED = /^([_#;'"$]|(data|loop|save|global|stop)_)/i;

/** Export `rows` as `format` and hand the file to the browser as a download; returns its name. */
export async function exportSelection(format: string, rows: number[]): Promise<string> {
  const sorted = Uint32Array.from(rows).sort();
  const { blob, name } = isStatic()
    ? buildInBrowser(format, Array.from(sorted))
    : await exportOnServer(format, sorted);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return name;
}

function buildInBrowser(format: string, rows: number[]): { blob: Blob; name: string } {
  const items = staticItemsOf(rows);
  const name = `selection-${rows.length}.${EXTENSIONS[format] ?? format}`;
  const text = (() => {
    switch (format) {
      case "csv": return toCsv(items);
      case "json": return JSON.stringify(items.map(withoutRow), null, 1);
      case "milopyp-coords": return toMilopypCoords(items);
      case "star": return toStar(items);
      default: throw new Error(`${format} export needs the server: run \`embedscope view ATLAS\``);
    }
  })();
  return { blob: new Blob([text], { type: "text/plain" }), name };
}

function withoutRow(item: Item): Record<string, unknown> {
  const { row: _row, ...rest } = item;
  return rest;
}

function columnsOf(items: Item[]): string[] {
  const names = new Set<string>(["id"]);
  for (const item of items) for (const name of Object.keys(item)) if (name !== "row") names.add(name);
  return [...names];
}

/** RFC 4180 CSV of the items' id and metadata. */
function toCsv(items: Item[]): string {
  const columns = columnsOf(items);
  const cell = (value: unknown) => {
    if (value === null || value === undefined) return "";
    const text = typeof value === "object" ? JSON.stringify(value) : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [columns.map(cell).join(",")];
  for (const item of items) lines.push(columns.map((name) => cell(item[name])).join(","));
  return `${lines.join("\n")}\n`;
}

function requireColumns(items: Item[], columns: string[], what: string): void {
  const missing = columns.filter((name) => items.some((item) => item[name] === null || item[name] === undefined));
  if (missing.length) throw new Error(`${what} needs columns ${columns.join(", ")}; the selection lacks ${missing.join(", ")}`);
}

function integer(value: unknown, name: string): string {
  const number = Number(value);
  if (!Number.isInteger(number)) throw new Error(`column ${name} must hold integer coordinates; found ${String(value)}`);
  return String(number);
}

/** MiLoPYP's training coordinates: `image_name x_coord y_coord z_coord`, tab-separated. */
function toMilopypCoords(items: Item[]): string {
  requireColumns(items, ["tomogram", "x", "y", "z"], "MiLoPYP coordinates");
  const lines = ["image_name\tx_coord\ty_coord\tz_coord\n"];
  for (const item of items) {
    lines.push(`${item.tomogram}\t${integer(item.x, "x")}\t${integer(item.y, "y")}\t${integer(item.z, "z")}\n`);
  }
  return lines.join("");
}

function starName(value: unknown): string {
  const name = String(value);
  if (!name || /["\u0000-\u001f\u007f]/.test(name) || name !== name.trim() || name.includes("  ")) {
    throw new Error(`name ${JSON.stringify(name)} cannot be written to a STAR file; rename it`);
  }
  return name.includes(" ") || STAR_RESERVED.test(name) ? `"${name}"` : name;
}

/** RELION 3.1+ particles, as `embedscope export` writes them: a `data_optics` block (one group) and a
 * `data_particles` loop of micrograph (x, y) or tomogram (x, y, z) coordinates; tomograms add _rlnTomoName. */
function toStar(items: Item[]): string {
  const tomograms = items.every((item) => item.tomogram !== undefined && item.z !== undefined);
  const columns = tomograms ? ["tomogram", "x", "y", "z"] : ["micrograph", "x", "y"];
  requireColumns(items, columns, "A STAR file");
  const optics: [string, string][] = [["rlnOpticsGroup", "1"], ["rlnOpticsGroupName", "opticsGroup1"]];
  if (tomograms) optics.push(["rlnImageDimensionality", "3"]);
  const labels = ["rlnMicrographName", "rlnOpticsGroup", ...(tomograms ? ["rlnTomoName"] : []),
    ...["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"].slice(0, columns.length - 1)];
  const lines = ["data_optics\n", "\n", "loop_\n"];
  optics.forEach(([label], index) => lines.push(`_${label} #${index + 1}\n`));
  lines.push(`${optics.map(([, value]) => value).join(" ")}\n`, "\n", "data_particles\n", "\n", "loop_\n");
  labels.forEach((label, index) => lines.push(`_${label} #${index + 1}\n`));
  for (const item of items) {
    const name = starName(item[columns[0]]);
    const coordinates = columns.slice(1).map((column) => String(Number(item[column])));
    lines.push(`${[name, "1", ...(tomograms ? [name] : []), ...coordinates].join(" ")}\n`);
  }
  lines.push("\n");
  return lines.join("");
}
