// Talks to the embedscope server, or reads the blobs of a static export when there is no server.
// Every request carries the page's token (from ?token=...) when it has one.
import { tableFromIPC, type Table } from "apache-arrow";

export type ColumnType = "category" | "number" | "text";

export interface ColumnInfo {
  type: ColumnType;
  categories?: string[];
}

export interface Meta {
  n: number;
  dim: number;
  metric: string | null;
  default_layer: string;
  layers: Record<string, { dims: 2 | 3; columns: string[] }>;
  columns: Record<string, ColumnInfo>;
  thumbs: Record<string, { shape: number[] }>;
  frames: string[] | null;
  groups: string[] | null;
  static: boolean;
}

export type Item = Record<string, unknown> & { row: number; id: string };

export interface Neighbors {
  rows: number[];
  distances: number[] | null;
}

/** What the data scripts of a static export leave in `window.EMBEDSCOPE_STATIC`. */
export interface StaticData {
  meta: Meta;
  blobs?: Record<string, string>;
  items?: Item[];
  /** The k nearest rows and distances of every item, base64 little-endian int32 / float32, n x k. */
  neighbors?: { k: number; rows: string; distances: string };
}

declare global {
  interface Window {
    EMBEDSCOPE_STATIC?: StaticData;
  }
}

const token = new URLSearchParams(location.search).get("token");
const ITEMS_PER_REQUEST = 1000;

/** True when the page was opened from a static export (no server to ask). */
export function isStatic(): boolean {
  return window.EMBEDSCOPE_STATIC !== undefined;
}

function staticData(): StaticData {
  const data = window.EMBEDSCOPE_STATIC;
  if (!data) throw new Error("no static data");
  return data;
}

/** The URL of an API path such as "points?layer=umap", with the token appended. */
function apiUrl(path: string): string {
  const url = `api/${path}`;
  if (!token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

async function checked(response: Response): Promise<Response> {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") message = body.detail;
  } catch {
    // not JSON: keep the status line
  }
  throw new Error(message);
}

async function getJson<T>(path: string): Promise<T> {
  return (await checked(await fetch(apiUrl(path)))).json() as Promise<T>;
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function staticBlob(key: string): Uint8Array {
  const blob = staticData().blobs?.[key];
  if (blob === undefined) throw new Error(`the static export holds no ${key}`);
  return decodeBase64(blob);
}

export async function loadMeta(): Promise<Meta> {
  return isStatic() ? staticData().meta : getJson<Meta>("meta");
}

/** An Arrow IPC stream endpoint (points, column) read into a table. */
export async function loadArrow(key: string): Promise<Table> {
  if (isStatic()) return tableFromIPC(staticBlob(key));
  const response = await checked(await fetch(apiUrl(key)));
  return tableFromIPC(new Uint8Array(await response.arrayBuffer()));
}

let staticItems: Item[] | null = null;

function allStaticItems(): Item[] {
  staticItems ??= staticData().items ?? [];
  return staticItems;
}

/** Metadata of `rows` (row, id and the item columns), in the order given. */
export async function loadItems(rows: number[]): Promise<Item[]> {
  if (isStatic()) {
    const items = allStaticItems();
    return rows.map((row) => items[row]).filter((item) => item !== undefined);
  }
  const result: Item[] = [];
  for (let start = 0; start < rows.length; start += ITEMS_PER_REQUEST) {
    const chunk = rows.slice(start, start + ITEMS_PER_REQUEST);
    result.push(...(await getJson<Item[]>(`items?rows=${chunk.join(",")}`)));
  }
  return result;
}

/** Nearest items of `row` in the original vector space, nearest first. */
export async function loadNeighbors(row: number, k: number): Promise<Neighbors> {
  if (!isStatic()) {
    const answer = await getJson<{ rows: number[]; distances: number[] }>(`neighbors/${row}?k=${k}`);
    return { rows: answer.rows, distances: answer.distances };
  }
  const table = staticNeighbors();
  if (!table) return { rows: [], distances: null };
  const start = row * table.k;
  const count = Math.min(k, table.k);
  return {
    rows: Array.from(table.rows.subarray(start, start + count)),
    distances: Array.from(table.distances.subarray(start, start + count)),
  };
}

let decodedNeighbors: { k: number; rows: Int32Array; distances: Float32Array } | null = null;

function staticNeighbors(): typeof decodedNeighbors {
  const encoded = staticData().neighbors;
  if (!encoded || encoded.k < 1) return null;
  if (!decodedNeighbors) {
    const rows = decodeBase64(encoded.rows);
    const distances = decodeBase64(encoded.distances);
    decodedNeighbors = {
      k: encoded.k,
      rows: new Int32Array(rows.buffer, rows.byteOffset, rows.byteLength / 4),
      distances: new Float32Array(distances.buffer, distances.byteOffset, distances.byteLength / 4),
    };
  }
  return decodedNeighbors;
}

/** Rows whose id or any text/category column contains `query` (case-insensitive). */
export async function searchItems(query: string, limit = 50): Promise<number[]> {
  if (!isStatic()) {
    return (await getJson<{ rows: number[] }>(`search?q=${encodeURIComponent(query)}&limit=${limit}`)).rows;
  }
  const needle = query.toLowerCase();
  const hits: number[] = [];
  for (const item of allStaticItems()) {
    for (const value of Object.values(item)) {
      if (typeof value === "string" && value.toLowerCase().includes(needle)) {
        hits.push(item.row);
        break;
      }
    }
    if (hits.length >= limit) break;
  }
  return hits;
}

/** The server's export of `rows` in `format`: the file's bytes and its name. */
export async function exportOnServer(format: string, rows: Uint32Array): Promise<{ blob: Blob; name: string }> {
  const body = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength).slice();
  const response = await checked(
    await fetch(apiUrl(`export?format=${encodeURIComponent(format)}`), {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body,
    }),
  );
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  return { blob: await response.blob(), name: match ? decodeURIComponent(match[1]) : `selection.${format}` };
}

/** All items' metadata in row order (static exports only: the server exports on its side). */
export function staticItemsOf(rows: number[]): Item[] {
  const items = allStaticItems();
  return rows.map((row) => items[row]);
}

/** The URL of an item's thumbnail of `kind`. */
export function thumbUrl(kind: string, row: number): string {
  if (isStatic()) return `data/thumbs/${encodeURIComponent(kind)}/${row}.png`;
  return apiUrl(`thumb/${encodeURIComponent(kind)}/${row}.png`);
}
