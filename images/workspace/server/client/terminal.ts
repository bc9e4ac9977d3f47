import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import './terminal.css';

/**
 * The seat's terminal page. Every URL is relative to the page (a proxy serves it under a
 * prefix), and nothing depends on the page's query string. Protocol: server/terminal/protocol.ts.
 */

// Acknowledge processed output in steps no larger than the server's low watermark.
const ACK_EVERY = 5_000;
const MAX_BACKOFF_MS = 10_000;

const statusLine = document.getElementById('status') as HTMLElement;
const clockLine = document.getElementById('clock') as HTMLElement;
const term = new Terminal({
  cursorBlink: true,
  scrollback: 5_000,
  fontFamily: 'ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace',
  fontSize: 14,
  lineHeight: 1.1, // room for underscores below the baseline
});
const fit = new FitAddon();
term.loadAddon(fit);
term.open(document.getElementById('terminal') as HTMLElement);
fit.fit();
term.focus();

const encoder = new TextEncoder();
let socket: WebSocket | null = null;
let failures = 0;
let exited = false;

function setStatus(state: 'connecting' | 'connected' | 'reconnecting' | 'exited', text: string) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

/** The class clock (server/clock/class-clock.ts ClockView): time left, a warning, the end. */
interface ClockMessage {
  endsAt: string | null;
  now: string;
  secondsLeft: number | null;
  ended: boolean;
  warning: number | null;
}
let clockTimer: ReturnType<typeof setInterval> | undefined;
function showClock(clock: ClockMessage): void {
  clearInterval(clockTimer);
  if (clock.ended) {
    exited = true; // nothing to reconnect to: the class is over
    clockLine.dataset.state = 'ended';
    clockLine.textContent = 'this class has ended';
    return;
  }
  if (clock.secondsLeft === null) {
    clockLine.textContent = '';
    return;
  }
  // Counted down from the server's figure, so a skewed clock here does not matter.
  const endsAt = Date.now() + clock.secondsLeft * 1000;
  const render = () => {
    const minutes = Math.max(0, Math.ceil((endsAt - Date.now()) / 60_000));
    clockLine.dataset.state = clock.warning === null ? 'ok' : 'warning';
    clockLine.textContent =
      clock.warning === null
        ? `${minutes} min left`
        : `this class ends in ${minutes} min: save your work`;
  };
  render();
  clockTimer = setInterval(render, 15_000);
}

function sendControl(msg: object): void {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
}

function connect(): void {
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  socket = ws;
  let unacked = 0; // per socket: output of an older socket is not acknowledged on this one

  ws.onopen = () => sendControl({ type: 'resize', cols: term.cols, rows: term.rows });
  ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
    if (typeof event.data === 'string') {
      const msg = JSON.parse(event.data) as { type: string; code?: number; signal?: number };
      if (msg.type === 'attached') {
        failures = 0;
        term.reset(); // the replay that follows redraws the recent screen
        setStatus('connected', 'connected');
      } else if (msg.type === 'clock') {
        showClock(msg as unknown as ClockMessage);
      } else if (msg.type === 'exit') {
        exited = true;
        setStatus('exited', `shell exited (code ${msg.code}); press Enter to start a new one`);
      }
      return;
    }
    const data = new Uint8Array(event.data);
    term.write(data, () => {
      unacked += data.length;
      if (unacked >= ACK_EVERY && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: 'ack', bytes: unacked }));
        unacked = 0;
      }
    });
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    if (exited) return;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures++) * (0.75 + Math.random() / 2);
    setStatus('reconnecting', `reconnecting in ${Math.ceil(delay / 1000)} s…`);
    setTimeout(connect, delay);
  };
}

term.onData((data) => {
  if (exited) {
    if (data !== '\r') return;
    exited = false;
    term.reset();
    setStatus('connecting', 'starting a new shell…');
    connect();
    return;
  }
  if (socket?.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
});
term.onResize(({ cols, rows }) => sendControl({ type: 'resize', cols, rows }));
window.addEventListener('resize', () => fit.fit());

connect();
