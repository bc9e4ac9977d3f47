import { ApiError, call } from '../api.ts';
import { setHand } from '../hand.ts';

/**
 * The learner's join page (`GET /join`; `POST` to the same URL is the API). A join lands in the
 * seat's workspace; the seat (its seatToken) is kept in localStorage, so coming back to this page
 * rejoins the same seat, and raises a hand.
 */
interface Joined {
  workshopId: string;
  seat: number;
  seatToken: string;
  endpoints: { terminal: string; workspace?: string };
}
interface Kept {
  code: string;
  name: string;
  seat: number;
  seatToken: string;
}

const KEY = 'clarateach.seat';
const joinUrl = location.pathname.replace(/\/+$/, '') || '/';
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('join');
const errorLine = $('error');
const handButton = $<HTMLButtonElement>('hand');

const kept = (): Kept | null => {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? 'null') as Kept | null;
  } catch {
    return null;
  }
};

function showError(error: unknown): void {
  errorLine.hidden = false;
  errorLine.textContent = error instanceof ApiError ? error.toString() : String(error);
}

/** Joins (or rejoins with the kept seatToken) and goes to the seat's workspace. */
async function join(code: string, name: string, seatToken?: string): Promise<void> {
  errorLine.hidden = true;
  const body = seatToken ? { code, name, seatToken } : { code, name };
  const joined = await call<Joined>('POST', joinUrl, body);
  localStorage.setItem(
    KEY,
    JSON.stringify({ code, name, seat: joined.seat, seatToken: joined.seatToken }),
  );
  location.assign(joined.endpoints.workspace ?? joined.endpoints.terminal);
}

function showSeat(seat: Kept): void {
  form.hidden = true;
  $('seat').hidden = false;
  $('welcome').textContent = `${seat.name}, you have seat ${seat.seat} in class ${seat.code}.`;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const code = $<HTMLInputElement>('code').value.trim().toUpperCase();
  const name = $<HTMLInputElement>('name').value.trim();
  const mine = kept();
  // The same class again: the kept seatToken gets the same seat back.
  join(code, name, mine?.code === code ? mine.seatToken : undefined).catch(showError);
});

$('open').addEventListener('click', (event) => {
  event.preventDefault();
  const mine = kept();
  if (mine) join(mine.code, mine.name, mine.seatToken).catch(showError);
});

handButton.addEventListener('click', () => {
  const mine = kept();
  if (!mine) return;
  const raise = handButton.getAttribute('aria-pressed') !== 'true';
  setHand(joinUrl, mine.seatToken, raise).then((hand) => {
    handButton.setAttribute('aria-pressed', String(hand.raised));
    handButton.textContent = hand.raised ? 'Hand raised: lower it' : 'Raise my hand';
  }, showError);
});

$('other').addEventListener('click', () => {
  localStorage.removeItem(KEY);
  $('seat').hidden = true;
  form.hidden = false;
});

const fromUrl = new URLSearchParams(location.search).get('code');
if (fromUrl) $<HTMLInputElement>('code').value = fromUrl.toUpperCase();
const mine = kept();
if (mine && (!fromUrl || fromUrl.toUpperCase() === mine.code)) showSeat(mine);
