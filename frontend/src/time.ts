// Sequence Atlases: the rows of each frame, and positions between two frames interpolated per track
// (the same id), so that playing the slider moves every item smoothly from one snapshot to the next.
import type { LayerPoints } from "./points";

export interface Timeline {
  frameCount: number;
  /** Rows of each frame, ascending. */
  rowsOf: Int32Array[];
  /** For every row, the row of the same track in the next frame, or -1. */
  nextRow: Int32Array;
}

/** Index the frames and tracks of a sequence layer. */
export function buildTimeline(layer: LayerPoints, frameCount: number): Timeline {
  const frame = layer.frame;
  const track = layer.track;
  if (!frame || !track) throw new Error("not a sequence layer");
  const n = frame.length;
  const counts = new Int32Array(frameCount);
  let tracks = 0;
  for (let row = 0; row < n; row++) {
    counts[frame[row]]++;
    if (track[row] + 1 > tracks) tracks = track[row] + 1;
  }
  const rowsOf = Array.from(counts, (count) => new Int32Array(count));
  const filled = new Int32Array(frameCount);
  const rowOfTrack = new Int32Array(frameCount * tracks).fill(-1);
  for (let row = 0; row < n; row++) {
    const f = frame[row];
    rowsOf[f][filled[f]++] = row;
    rowOfTrack[f * tracks + track[row]] = row;
  }
  const nextRow = new Int32Array(n).fill(-1);
  for (let row = 0; row < n; row++) {
    const f = frame[row];
    if (f + 1 < frameCount) nextRow[row] = rowOfTrack[(f + 1) * tracks + track[row]];
  }
  return { frameCount, rowsOf, nextRow };
}

/** The frame whose rows are shown at time `t` (a fractional frame index). */
export function frameAt(timeline: Timeline, t: number): number {
  return Math.min(timeline.frameCount - 1, Math.max(0, Math.floor(t + 1e-9)));
}

/**
 * Positions at time `t`: the rows of frame floor(t) moved the fraction t - floor(t) of the way to
 * their track's row in the next frame. Only that frame's rows are shown, so only they are written.
 */
export function interpolate(
  timeline: Timeline, t: number, x: Float32Array, y: Float32Array, outX: Float32Array, outY: Float32Array,
): void {
  const f = frameAt(timeline, t);
  const fraction = Math.min(1, Math.max(0, t - f));
  for (const row of timeline.rowsOf[f]) {
    const next = timeline.nextRow[row];
    if (fraction > 0 && next >= 0) {
      outX[row] = x[row] + (x[next] - x[row]) * fraction;
      outY[row] = y[row] + (y[next] - y[row]) * fraction;
    } else {
      outX[row] = x[row];
      outY[row] = y[row];
    }
  }
}

/**
 * Wire the slider and play button; `onTime` receives the new fractional frame index. The returned
 * `set` moves the slider without calling `onTime` (for callers that change the time themselves).
 */
export function attachTimeControls(
  frames: string[], onTime: (t: number) => void,
): { set(t: number): void } {
  const container = document.getElementById("time") as HTMLElement;
  const slider = document.getElementById("frame") as HTMLInputElement;
  const label = document.getElementById("frame-label") as HTMLElement;
  const play = document.getElementById("play") as HTMLButtonElement;
  container.hidden = false;
  slider.max = String(frames.length - 1);
  const FRAMES_PER_SECOND = 1;
  let playing = false;
  let lastTick = 0;

  const display = (t: number) => {
    slider.value = String(t);
    label.textContent = frames[Math.min(frames.length - 1, Math.round(t))] ?? "";
  };
  const show = (t: number) => {
    display(t);
    onTime(t);
  };
  const tick = (now: number) => {
    if (!playing) return;
    const elapsed = lastTick ? (now - lastTick) / 1000 : 0;
    lastTick = now;
    let t = Number(slider.value) + elapsed * FRAMES_PER_SECOND;
    if (t >= frames.length - 1) {
      t = frames.length - 1;
      playing = false;
      play.textContent = "Play";
    }
    show(t);
    if (playing) requestAnimationFrame(tick);
  };
  slider.addEventListener("input", () => show(Number(slider.value)));
  play.addEventListener("click", () => {
    playing = !playing;
    play.textContent = playing ? "Pause" : "Play";
    if (playing) {
      if (Number(slider.value) >= frames.length - 1) slider.value = "0";
      lastTick = 0;
      requestAnimationFrame(tick);
    }
  });
  display(0);
  return { set: display };
}
