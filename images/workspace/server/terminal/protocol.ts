/**
 * The terminal's wire protocol. Binary frames carry terminal bytes: keystrokes from the browser,
 * shell output to it. Text frames carry one JSON control message each.
 *
 * browser → server: binary = input; {"type":"resize","cols","rows"}; {"type":"ack","bytes"}
 *   (bytes of output the browser's xterm has processed, counted from its write callbacks).
 * server → browser: binary = output; {"type":"attached","pid","replay"} first, then one binary
 *   frame of `replay` bytes (the shell's recent output) when replay > 0; {"type":"exit","code",
 *   "signal"} when the shell ends, after which the server closes the socket; {"type":"clock",
 *   …ClockView} (clock/class-clock.ts) on attach and whenever the class's end, warning or ending
 *   changes. `GET clock` answers the same ClockView as JSON, for any page of the seat.
 */
export type ClientControl =
  { type: 'resize'; cols: number; rows: number } | { type: 'ack'; bytes: number };

export type ServerControl =
  | { type: 'attached'; pid: number; replay: number }
  | { type: 'exit'; code: number; signal: number };

export const MAX_COLS = 1000;
export const MAX_ROWS = 500;
/** Larger than any single output batch, so one ack can settle what one frame delivered. */
export const MAX_ACK = 16 * 1024 * 1024;

function intIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** Pure: a text frame from a browser, or null for anything malformed (ignored, never fatal). */
export function parseClientControl(text: string): ClientControl | null {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof msg !== 'object' || msg === null) return null;
  const m = msg as Record<string, unknown>;
  if (m.type === 'resize' && intIn(m.cols, 1, MAX_COLS) && intIn(m.rows, 1, MAX_ROWS)) {
    return { type: 'resize', cols: m.cols, rows: m.rows };
  }
  if (m.type === 'ack' && intIn(m.bytes, 1, MAX_ACK)) return { type: 'ack', bytes: m.bytes };
  return null;
}
