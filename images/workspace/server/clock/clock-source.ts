import { readFile } from 'node:fs/promises';
import { announcement, clockView, parseEndsAt, type ClockView } from './class-clock.ts';

export interface ClassClockOptions {
  /** The file the VM's watcher keeps the class's end in (/run/clarateach/class-ends). */
  file: string;
  /** Injectable for tests: the current time in ms. */
  now?: () => number;
  /** How often the file and the time are looked at; default 1 s. */
  intervalMs?: number;
}

export interface ClassClock {
  current(): ClockView;
  /** Called with the new view whenever the end, the warning or the ending changes, and with the
   * line for the shell when there is one; returns an unsubscribe function. */
  subscribe(listener: (view: ClockView, shellLine: string | null) => void): () => void;
  stop(): void;
}

/** Follows the clock file (a bind mount: polled, as inotify does not see a host's rename). */
export function startClassClock(opts: ClassClockOptions): ClassClock {
  const now = opts.now ?? Date.now;
  const listeners = new Set<(view: ClockView, shellLine: string | null) => void>();
  let endsAt: string | null = null;
  let last = clockView(null, now());
  let reading = false;
  const tick = async () => {
    if (reading) return;
    reading = true;
    try {
      endsAt = parseEndsAt(await readFile(opts.file, 'utf8').catch(() => ''));
    } finally {
      reading = false;
    }
    const next = clockView(endsAt, now());
    const changed =
      next.endsAt !== last.endsAt || next.warning !== last.warning || next.ended !== last.ended;
    const shellLine = announcement(last, next);
    last = next;
    if (changed) for (const listener of listeners) listener(next, shellLine);
  };
  void tick();
  const timer = setInterval(() => void tick(), opts.intervalMs ?? 1000);
  timer.unref();
  return {
    current: () => clockView(endsAt, now()),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => clearInterval(timer),
  };
}
