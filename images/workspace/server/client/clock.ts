/**
 * The class clock in a page's header. The terminal socket sends a `clock` message on attach and
 * whenever the class's end moves (server/clock/class-clock.ts ClockView); `seat.json` may carry
 * `endsAt` for the first paint.
 */
export function timeLeft(endsAt: string, now: number): string | null {
  const end = Date.parse(endsAt);
  if (Number.isNaN(end)) return null;
  const minutes = Math.max(0, Math.floor((end - now) / 60_000));
  if (minutes === 0) return 'under a minute left';
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h > 0 ? `${h} h ${String(m).padStart(2, '0')} min left` : `${m} min left`;
}

export function showClock(el: HTMLElement, endsAt: string | null | undefined): void {
  const text = endsAt ? timeLeft(endsAt, Date.now()) : null;
  el.hidden = text === null;
  el.textContent = text ?? '';
}

/** The terminal socket's `clock` message (server/clock/class-clock.ts ClockView). */
export interface ClockMessage {
  endsAt: string | null;
  now: string;
  secondsLeft: number | null;
  ended: boolean;
  warning: number | null;
}

const clockTimers = new WeakMap<HTMLElement, ReturnType<typeof setInterval>>();

/** Time left, a warning before the end, and "this class has ended" once it is over. */
export function showClassClock(el: HTMLElement, clock: ClockMessage): void {
  clearInterval(clockTimers.get(el));
  el.hidden = false;
  if (clock.ended) {
    el.dataset.state = 'ended';
    el.textContent = 'this class has ended';
    return;
  }
  if (clock.secondsLeft === null) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  // Counted down from the server's figure, so a skewed clock here does not matter.
  const endsAt = Date.now() + clock.secondsLeft * 1000;
  const render = () => {
    const left = timeLeft(new Date(endsAt).toISOString(), Date.now()) ?? '';
    el.dataset.state = clock.warning === null ? 'ok' : 'warning';
    el.textContent =
      clock.warning === null ? left : `${left}: this class ends soon, save your work`;
  };
  render();
  clockTimers.set(el, setInterval(render, 15_000));
}
