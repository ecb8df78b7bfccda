// Metadata columns on demand: category codes or numbers for colouring and group toggles, kept once loaded.
import { loadArrow, type Meta } from "./api";

const loaded = new Map<string, Promise<ArrayLike<number>>>();

/** The values of column `name`: int16 codes (-1 missing) for categories, float32 (NaN missing) for numbers. */
export function loadColumn(name: string): Promise<ArrayLike<number>> {
  let values = loaded.get(name);
  if (!values) {
    values = loadArrow(`column?name=${encodeURIComponent(name)}`).then((table) => {
      const child = table.getChild("values");
      if (!child) throw new Error(`column ${name} came without values`);
      return child.toArray() as ArrayLike<number>;
    });
    values.catch(() => loaded.delete(name));
    loaded.set(name, values);
  }
  return values;
}

/** Columns that can colour the map, in the order of meta.columns. */
export function colorableColumns(meta: Meta): string[] {
  return Object.entries(meta.columns)
    .filter(([, info]) => info.type === "category" || info.type === "number")
    .map(([name]) => name);
}

/** The column to colour by first: the last clustering (`<layer>_cluster`), else none. */
export function defaultColorColumn(meta: Meta): string | null {
  const clusterings = colorableColumns(meta).filter(
    (name) => name.endsWith("_cluster") && meta.columns[name].type === "category",
  );
  return clusterings.length ? clusterings[clusterings.length - 1] : null;
}
