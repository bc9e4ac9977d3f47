import { showClassClock } from './clock.ts';
import { mountTerminal } from './terminal-view.ts';
import './terminal.css';

// The page's script runs: the HTML's "did not finish loading" notice stays hidden.
document.documentElement.dataset.started = '';

/**
 * The seat's bare terminal page. Every URL is relative to the page (a proxy serves it under a
 * prefix), and nothing depends on the page's query string.
 */
const statusLine = document.getElementById('status') as HTMLElement;
const clockLine = document.getElementById('clock') as HTMLElement;
const view = mountTerminal(
  document.getElementById('terminal') as HTMLElement,
  new URL('ws', location.href),
  (state, text) => {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  },
  {
    onClock: (clock) => {
      showClassClock(clockLine, clock);
      view.fit(); // a warning banner takes a row's height from the terminal, and gives it back
    },
  },
);
view.focus();
window.addEventListener('resize', () => view.fit());
