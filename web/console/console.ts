import QRCode from 'qrcode';
import { ApiError, call, el, pageConfig } from '../api.ts';
// xterm's rules too: the watch grid is a chunk of its own, and esbuild loads no CSS with one.
import '@xterm/xterm/css/xterm.css';
import './console.css';

/**
 * The instructor's console, served at `/` by the `workshops` function: classes, the live status of
 * one, the join code for the projector, learners and hands, and the watch grid (loaded on demand).
 */
interface FieldSchema {
  type: 'string' | 'integer' | 'boolean';
  minimum?: number;
  maximum?: number;
  maxLength?: number;
}
interface Config {
  auth: 'dev' | 'token';
  googleClientId?: string;
  joinUrl: string;
  /** The create body's JSON schema, as the API checks it: the form has a control per field. */
  createSchema: { required: string[]; properties: Record<string, FieldSchema> };
}
interface Vm {
  name: string;
  status: string;
  zone: string;
  moved: string | null;
}
interface Workshop {
  id: string;
  name: string;
  status: string;
  seats: number;
  seatsReady: number;
  seatsTaken: number;
  joinCode: string;
  expiresAt: string;
  error: { code: string; message: string } | null;
  vms: Vm[];
  estimatedCost: {
    currency: string;
    hourly: number;
    total: number;
    standardFallback?: { total: number };
  };
}
export interface RoomSeat {
  seat: number;
  learner: { name: string; joinedAt: string } | null;
  handRaisedAt: string | null;
  watch: string | null;
}
interface Room {
  seats: RoomSeat[];
  hands: Array<{ seat: number; name: string; raisedAt: string }>;
}

const POLL_MS = 2_000;
const config = pageConfig<Config>();
const $ = (id: string) => document.getElementById(id) as HTMLElement;
let idToken: string | null = null;
let selected: string | null = null;
let room: Room | null = null;
let watching: { update(seats: RoomSeat[]): void; close(): void } | null = null;

function showError(error: unknown): void {
  const line = $('error');
  line.hidden = false;
  line.textContent = error instanceof ApiError ? error.toString() : `ERROR: ${String(error)}`;
}

/** Every instructor call: the signed-in user's Google ID token when deployed, none locally. */
function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = idToken ? { authorization: `Bearer ${idToken}` } : {};
  return call<T>(method, `/workshops${path}`, body, headers);
}

/** Runs a user's action: its error shows as the API's code and message, and the view refreshes. */
function act(action: () => Promise<unknown>): void {
  $('error').hidden = true;
  action().then(refresh).catch(showError);
}

function createForm(): void {
  const form = $('create') as HTMLFormElement;
  for (const [name, field] of Object.entries(config.createSchema.properties)) {
    const required = config.createSchema.required.includes(name);
    let control: HTMLElement;
    if (field.type === 'boolean') {
      control = el(
        'select',
        { name },
        el('option', { value: '' }, 'default'),
        el('option', { value: 'true' }, 'yes'),
        el('option', { value: 'false' }, 'no'),
      );
    } else if (field.type === 'integer') {
      control = el('input', {
        name,
        type: 'number',
        min: String(field.minimum ?? ''),
        max: String(field.maximum ?? ''),
        step: '1',
      });
    } else if ((field.maxLength ?? 0) > 1000) {
      control = el('textarea', { name, maxlength: String(field.maxLength) });
    } else {
      control = el('input', { name, maxlength: String(field.maxLength ?? '') });
    }
    if (required) control.setAttribute('required', '');
    form.append(el('label', {}, `${name}${required ? '' : ' (optional)'}`, control));
  }
  form.append(el('button', { type: 'submit' }, 'Create'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(config.createSchema.properties)) {
      const value = (form.elements.namedItem(name) as HTMLInputElement).value.trim();
      if (value === '') continue;
      body[name] =
        field.type === 'integer'
          ? Number(value)
          : field.type === 'boolean'
            ? value === 'true'
            : value;
    }
    act(async () => {
      const created = await api<Workshop>('POST', '', body);
      selected = created.id;
      form.reset();
    });
  });
}

const money = (n: number, currency: string) => `${n.toFixed(2)} ${currency}`;
const time = (iso: string) => new Date(iso).toLocaleTimeString();

async function renderList(): Promise<void> {
  const { workshops } = await api<{ workshops: Workshop[] }>('GET', '');
  const list = $('classes');
  list.replaceChildren(
    ...workshops.map((w) => {
      const button = el(
        'button',
        { type: 'button', 'aria-current': String(w.id === selected) },
        `${w.name} `,
        el('span', { class: 'status', 'data-status': w.status }, w.status),
      );
      button.addEventListener('click', () => {
        selected = w.id;
        closeGrid();
        void refresh();
      });
      return el('li', {}, button);
    }),
  );
}

function button(label: string, action: () => Promise<unknown>, attrs: Record<string, string> = {}) {
  const b = el('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', () => act(action));
  return b;
}

async function renderDetail(): Promise<void> {
  const detail = $('detail');
  if (!selected) {
    detail.hidden = true;
    return;
  }
  const id = selected;
  const w = await api<Workshop>('GET', `/${id}`);
  room = w.status === 'ready' ? await api<Room>('GET', `/${id}/seats`) : null;
  const joinLink = `${config.joinUrl}?code=${w.joinCode}`;
  const qr = el('div', { class: 'qr', 'aria-label': `QR code of ${joinLink}` });
  qr.innerHTML = await QRCode.toString(joinLink, { type: 'svg', margin: 1 });
  const cost = w.estimatedCost;
  const live = ['provisioning', 'ready'].includes(w.status);
  detail.hidden = false;
  detail.replaceChildren(
    el(
      'h2',
      {},
      `${w.name} `,
      el('span', { class: 'status', id: 'status', 'data-status': w.status }, w.status),
    ),
    el(
      'p',
      { id: 'ready' },
      `seats ready ${w.seatsReady} of ${w.seats} · ${w.seatsTaken} joined · ends ${time(w.expiresAt)}`,
    ),
    ...(w.error
      ? [
          el(
            'p',
            { class: 'status', 'data-status': 'failed' },
            `${w.error.code}: ${w.error.message}`,
          ),
        ]
      : []),
    el(
      'div',
      { class: 'actions' },
      ...(w.status === 'created' ? [button('Start', () => api('POST', `/${id}/start`))] : []),
      ...(live
        ? [button('Extend 30 min', () => api('POST', `/${id}/extend`, { minutes: 30 }))]
        : []),
      ...(live || w.status === 'created'
        ? [button('End class', () => api('DELETE', `/${id}`))]
        : []),
      ...(room ? [button('Watch every seat', async () => openGrid())] : []),
    ),
    el(
      'div',
      { class: 'projector' },
      el(
        'div',
        {},
        el('div', {}, 'Join at ', el('a', { href: joinLink }, config.joinUrl)),
        el('div', { class: 'code', id: 'join-code' }, w.joinCode),
      ),
      qr,
    ),
    el(
      'p',
      {},
      `Estimated cost: ${money(cost.total, cost.currency)} (${money(cost.hourly, cost.currency)}/h)` +
        (cost.standardFallback
          ? `, up to ${money(cost.standardFallback.total, cost.currency)} if Spot falls back`
          : ''),
    ),
    el('h3', {}, 'VMs'),
    el(
      'table',
      {},
      el(
        'tr',
        {},
        el('th', {}, 'VM'),
        el('th', {}, 'zone'),
        el('th', {}, 'status'),
        el('th', {}, 'why it moved'),
      ),
      ...w.vms.map((vm) =>
        el(
          'tr',
          {},
          el('td', {}, vm.name),
          el('td', {}, vm.zone),
          el('td', {}, vm.status),
          el('td', {}, vm.moved ?? ''),
        ),
      ),
    ),
    ...(room ? roomParts(id, room) : []),
  );
  watching?.update(room?.seats ?? []);
}

function roomParts(id: string, r: Room): HTMLElement[] {
  const hands = r.hands.map((h) =>
    el(
      'li',
      {},
      `Seat ${h.seat}, ${h.name}, since ${time(h.raisedAt)} `,
      button('Clear', () => api('DELETE', `/${id}/hands/${h.seat}`), {
        'data-clear': String(h.seat),
      }),
    ),
  );
  const learners = r.seats.filter((s) => s.learner);
  return [
    el('h3', {}, `Hands (${r.hands.length})`),
    el('ul', { class: 'hands', id: 'hands' }, ...(hands.length ? hands : [el('li', {}, 'none')])),
    el('h3', {}, 'Learners'),
    el(
      'table',
      { id: 'learners' },
      el(
        'tr',
        {},
        el('th', {}, 'seat'),
        el('th', {}, 'name'),
        el('th', {}, 'joined'),
        el('th', {}, ''),
      ),
      ...learners.map((s) =>
        el(
          'tr',
          { 'data-seat': String(s.seat) },
          el('td', {}, String(s.seat)),
          el('td', {}, s.learner!.name),
          el('td', {}, time(s.learner!.joinedAt)),
          el(
            'td',
            {},
            button('Free seat', () => api('DELETE', `/${id}/seats/${s.seat}`), {
              'data-free': String(s.seat),
            }),
            ' ',
            resetButton(id, s.seat, s.learner!.name),
          ),
        ),
      ),
    ),
  ];
}

/**
 * A seat's reset asks first, and asks what becomes of the learner's home: nothing is preselected,
 * so the instructor cannot wipe a learner's files by confirming a default.
 */
function resetButton(id: string, seat: number, name: string): HTMLElement {
  const b = el('button', { type: 'button', 'data-reset': String(seat) }, 'Reset seat');
  b.addEventListener('click', () => {
    const dialog = $('reset') as HTMLDialogElement;
    const form = dialog.querySelector('form')!;
    const confirm = $('reset-confirm') as HTMLButtonElement;
    form.reset();
    confirm.disabled = true;
    confirm.textContent = `Reset seat ${seat}`;
    $('reset-title').textContent = `Reset seat ${seat} (${name})?`;
    form.onchange = () => (confirm.disabled = false);
    dialog.onclose = () => {
      if (dialog.returnValue !== 'reset') return;
      const keepHome = (form.elements.namedItem('home') as RadioNodeList).value === 'keep';
      act(() => api('POST', `/${id}/seats/${seat}/reset`, { keepHome }));
    };
    dialog.returnValue = '';
    dialog.showModal();
  });
  return b;
}

async function openGrid(): Promise<void> {
  if (!room) return;
  const { watchGrid } = await import('./watch.ts');
  watching?.close();
  watching = watchGrid($('grid'), room.seats);
}

function closeGrid(): void {
  watching?.close();
  watching = null;
}

let refreshing = false;
async function refresh(): Promise<void> {
  if (refreshing) return;
  refreshing = true;
  try {
    await renderList();
    await renderDetail();
  } finally {
    refreshing = false;
  }
}

function start(): void {
  createForm();
  void refresh().catch(showError);
  setInterval(() => void refresh().catch(showError), POLL_MS);
}

interface GoogleId {
  accounts: { id: { initialize(o: object): void; renderButton(e: HTMLElement, o: object): void } };
}

if (config.auth === 'dev') {
  $('user').textContent = 'development user';
  start();
} else {
  // Google Identity Services: its ID token goes to the API as Authorization: Bearer.
  const script = el('script', { src: 'https://accounts.google.com/gsi/client' });
  script.addEventListener('load', () => {
    const google = (window as unknown as { google: GoogleId }).google;
    google.accounts.id.initialize({
      client_id: config.googleClientId,
      callback: (response: { credential: string }) => {
        const first = idToken === null;
        idToken = response.credential;
        $('signin').hidden = true;
        const claims = JSON.parse(
          atob(idToken.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')),
        ) as { email?: string };
        $('user').textContent = claims.email ?? '';
        if (first) start();
      },
    });
    $('signin').hidden = false;
    google.accounts.id.renderButton($('signin'), { type: 'standard' });
  });
  document.head.append(script);
}
