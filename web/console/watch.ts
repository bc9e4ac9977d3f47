import {
  mountTerminal,
  type TerminalView,
} from '../../images/workspace/server/client/terminal-view.ts';
import type { RoomSeat } from './console.ts';

/**
 * The watch grid: every seat's terminal, live, small and read-only, through the seat's watch URL
 * (the class's viewer credential; the seat server drops anything a viewer sends but acks). A click
 * enlarges a seat. Loaded only when the instructor opens it.
 */

// The learner's terminal is wider than a tile: the tile shows 80 columns small, and a click
// makes the tile bigger, not the terminal (a viewer cannot resize the learner's shell).
const LOOK = { fontSize: 11, rows: 12, cols: 80, scrollback: 500 };

interface Tile {
  url: string;
  close(): void;
}

function watchSeat(container: HTMLElement, seat: RoomSeat, url: string): Tile {
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
  // The socket beside the page, with the page's query: the viewer credential is `?v=`.
  const socketUrl = new URL('ws', url);
  socketUrl.search = new URL(url).search;
  const view: TerminalView = mountTerminal(
    box,
    socketUrl,
    (state, text) => {
      tile.dataset.state = state;
      title.title = text;
    },
    { readOnly: true, look: LOOK },
  );
  return {
    url,
    close: () => {
      view.close();
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
