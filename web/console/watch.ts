import { Terminal } from '@xterm/xterm';
import type { RoomSeat } from './console.ts';

/**
 * The watch grid: every seat's terminal, live, small and read-only, through the seat's watch URL
 * (the class's viewer credential; the seat server drops anything a viewer sends but acks). A click
 * enlarges a seat. Loaded only when the instructor opens it.
 */
const ACK_EVERY = 5_000;

interface Tile {
  url: string;
  close(): void;
}

function watchSeat(container: HTMLElement, seat: RoomSeat, url: string): Tile {
  const term = new Terminal({
    disableStdin: true,
    fontSize: 11,
    rows: 12,
    cols: 80,
    scrollback: 500,
  });
  const box = document.createElement('div');
  box.className = 'term';
  const title = document.createElement('h3');
  title.textContent = `Seat ${seat.seat}${seat.learner ? `, ${seat.learner.name}` : ''}`;
  const tile = document.createElement('div');
  tile.className = 'tile';
  tile.dataset.seat = String(seat.seat);
  tile.append(title, box);
  tile.addEventListener('click', () => tile.classList.toggle('big'));
  container.append(tile);
  term.open(box);

  // The socket beside the page, with the page's query: the viewer credential is `?v=`.
  const socketUrl = new URL('ws', url);
  socketUrl.search = new URL(url).search;
  socketUrl.protocol = socketUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(socketUrl);

  ws.binaryType = 'arraybuffer';
  let unacked = 0;
  ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
    if (typeof event.data === 'string') {
      if ((JSON.parse(event.data) as { type: string }).type === 'attached') term.reset();
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
  ws.onclose = () => tile.classList.add('closed');
  return {
    url,
    close: () => {
      ws.close();
      term.dispose();
      tile.remove();
    },
  };
}

/** Opens one tile per seat that can be watched; `update` follows seats whose URL changed. */
export function watchGrid(container: HTMLElement, seats: RoomSeat[]) {
  const tiles = new Map<number, Tile>();
  container.hidden = false;
  const update = (next: RoomSeat[]) => {
    for (const seat of next) {
      const tile = tiles.get(seat.seat);
      if (tile?.url === seat.watch) continue;
      tile?.close();
      tiles.delete(seat.seat);
      if (seat.watch) tiles.set(seat.seat, watchSeat(container, seat, seat.watch));
    }
  };
  update(seats);
  return {
    update,
    close: () => {
      for (const tile of tiles.values()) tile.close();
      container.hidden = true;
    },
  };
}
