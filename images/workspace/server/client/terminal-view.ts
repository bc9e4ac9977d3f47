import { FitAddon } from '@xterm/addon-fit';
import { Terminal, type ITerminalOptions } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import type { ClockMessage } from './clock.ts';

/**
 * The seat's terminal in an element: xterm.js on the seat's one shell, with reattach (backoff,
 * then the server's replay) and flow control (acks of processed output). Used by the bare
 * terminal page, the workspace page and, read-only, the instructor's watch grid.
 * Protocol: server/terminal/protocol.ts.
 */

// Acknowledge processed output in steps no larger than the server's low watermark.
const ACK_EVERY = 5_000;
const MAX_BACKOFF_MS = 10_000;

export type TerminalState = 'connecting' | 'connected' | 'reconnecting' | 'exited' | 'closed';

export interface TerminalView {
  /** Types text into the shell, as if the learner had typed it. */
  type(text: string): boolean;
  fit(): void;
  focus(): void;
  /** Closes the socket for good (no reconnect) and removes the terminal. */
  close(): void;
}

export interface TerminalViewOptions {
  releaseTab?: boolean;
  onClock?: (clock: ClockMessage) => void;
  /**
   * A watcher's view: keystrokes and sizes are never sent (the server drops a viewer's anyway), so
   * the terminal keeps the size in `look` rather than fitting its element, and an exited shell is
   * not restarted from here.
   */
  readOnly?: boolean;
  /** xterm options over the defaults (the grid's small font and fixed size). */
  look?: ITerminalOptions;
}

/**
 * Whether the seat's proxy now refuses this page's credential (403 on the terminal's own page):
 * the seat was freed or the credential replaced, and reconnecting cannot help.
 */
async function accessRefused(socketUrl: URL): Promise<boolean> {
  try {
    const res = await fetch(new URL('./', socketUrl), { method: 'HEAD', cache: 'no-store' });
    return res.status === 403;
  } catch {
    return false; // the VM is not answering: keep trying
  }
}

export function mountTerminal(
  el: HTMLElement,
  socketUrl: URL,
  onStatus: (state: TerminalState, text: string) => void,
  opts: TerminalViewOptions = {},
): TerminalView {
  const readOnly = opts.readOnly ?? false;
  const term = new Terminal({
    cursorBlink: !readOnly,
    disableStdin: readOnly,
    scrollback: 5_000,
    fontFamily: 'ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace',
    fontSize: 14,
    lineHeight: 1.1, // room for underscores below the baseline
    ...opts.look,
  });
  const fitAddon = new FitAddon();
  term.loadAddon(fitAddon);
  term.open(el);
  const fit = () => {
    if (!readOnly) fitAddon.fit();
  };
  fit();
  // On a page with other controls, Escape then Tab moves focus on (the terminal keeps Tab for
  // completion otherwise): a keyboard path out of the terminal.
  if (opts.releaseTab) {
    let escaped = false;
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown') return true;
      if (e.key === 'Tab' && escaped) return false;
      escaped = e.key === 'Escape';
      return true;
    });
  }

  const encoder = new TextEncoder();
  let socket: WebSocket | null = null;
  let failures = 0;
  let exited = false;
  let closed = false;

  const sendControl = (msg: object): void => {
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
  };
  const sendSize = (): void => {
    if (!readOnly) sendControl({ type: 'resize', cols: term.cols, rows: term.rows });
  };

  function connect(): void {
    if (closed) return; // a reconnect was due when the view closed
    // The query stays: a watcher's credential is `?v=`; the learner's pages pass none.
    const url = new URL(socketUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.hash = '';
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    let unacked = 0; // per socket: output of an older socket is not acknowledged on this one

    ws.onopen = sendSize;
    ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data === 'string') {
        const msg = JSON.parse(event.data) as { type: string; code?: number };
        if (msg.type === 'attached') {
          failures = 0;
          term.reset(); // the replay that follows redraws the recent screen
          onStatus('connected', 'connected');
        } else if (msg.type === 'clock') {
          const clock = msg as unknown as ClockMessage;
          if (clock.ended) exited = true; // nothing to reconnect to: the class is over
          opts.onClock?.(clock);
        } else if (msg.type === 'exit') {
          exited = true;
          const then = readOnly ? '' : '; press Enter to start a new one';
          onStatus('exited', `shell exited (code ${msg.code})${then}`);
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
    ws.onclose = async () => {
      if (socket !== ws) return;
      socket = null;
      if (exited || closed) return;
      // A watcher's view has no learner credential to ask about: it keeps reconnecting.
      if (!readOnly && (await accessRefused(socketUrl))) {
        closed = true;
        onStatus('closed', 'this seat was closed: your access to it has ended');
        return;
      }
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures++) * (0.75 + Math.random() / 2);
      onStatus('reconnecting', `reconnecting in ${Math.ceil(delay / 1000)} s…`);
      setTimeout(connect, delay);
    };
  }

  const send = (data: string): boolean => {
    if (socket?.readyState !== WebSocket.OPEN) return false;
    socket.send(encoder.encode(data));
    return true;
  };

  term.onData((data) => {
    if (closed || readOnly) return;
    if (exited) {
      if (data !== '\r') return;
      exited = false;
      term.reset();
      onStatus('connecting', 'starting a new shell…');
      connect();
      return;
    }
    send(data);
  });
  term.onResize(sendSize);
  connect();

  return {
    type: (text) => !readOnly && send(text),
    fit,
    focus: () => term.focus(),
    close: () => {
      closed = true;
      socket?.close();
      term.dispose();
    },
  };
}
