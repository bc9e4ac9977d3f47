/**
 * The header's class clock. `endsAt` (ISO-8601) comes with the seat's facts in `seat.json`; the
 * seat server does not know it yet (the class clock reaches the VM with issue 17), and while it
 * is absent the slot stays hidden.
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
