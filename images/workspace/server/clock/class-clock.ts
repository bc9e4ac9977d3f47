/**
 * The class clock as a seat shows it (pure). The VM's watcher keeps the class's end in a file
 * (startup/clarateach-watcher.sh); the seat server reads it, tells every page the time left, and
 * warns 15, 5 and 1 minutes before the end in the page and in the shell.
 */

/** Minutes before the end at which a seat is warned, largest first. */
export const WARN_MINUTES = [15, 5, 1] as const;

/** What `GET clock` answers and the terminal socket's `{"type":"clock"}` message carries. */
export interface ClockView {
  /** The class's end (ISO-8601), or null when this seat has not been told one. */
  endsAt: string | null;
  /** The server's time (ISO-8601), so a page can count down despite a skewed clock of its own. */
  now: string;
  secondsLeft: number | null;
  ended: boolean;
  /** The warning in force: 15, 5 or 1 (minutes), or null. */
  warning: number | null;
}

/** An ISO-8601 time from the clock file, or null for anything else. */
export function parseEndsAt(text: string): string | null {
  const trimmed = text.trim();
  const ms = Date.parse(trimmed);
  return /^\d{4}-\d{2}-\d{2}T/.test(trimmed) && Number.isFinite(ms)
    ? new Date(ms).toISOString()
    : null;
}

export function clockView(endsAt: string | null, nowMs: number): ClockView {
  const now = new Date(nowMs).toISOString();
  if (!endsAt) return { endsAt: null, now, secondsLeft: null, ended: false, warning: null };
  const secondsLeft = Math.max(0, Math.ceil((Date.parse(endsAt) - nowMs) / 1000));
  const ended = secondsLeft === 0;
  const within = WARN_MINUTES.filter((m) => secondsLeft <= m * 60);
  const warning = ended || within.length === 0 ? null : within[within.length - 1]!;
  return { endsAt, now, secondsLeft, ended, warning };
}

/**
 * Whether the shell gets a line now: a warning came into force that is nearer the end than the
 * one before (an extension that moves the end later only lifts it), or the class ended.
 */
export function announcement(before: ClockView | null, after: ClockView): string | null {
  if (after.ended && !before?.ended) return line('this class has ended');
  if (after.warning === null) return null;
  if (before?.warning != null && before.warning <= after.warning) return null;
  const at = after.endsAt!.slice(11, 16);
  const unit = after.warning === 1 ? 'minute' : 'minutes';
  return line(`this class ends in ${after.warning} ${unit} (at ${at} UTC): save your work`);
}

/** Like `wall`: on a line of its own, bold, whatever the shell was printing. */
function line(text: string): string {
  return `\r\n\x1b[1;33m*** ClaraTeach: ${text} ***\x1b[0m\r\n`;
}
