import { showClassClock, showClock } from './clock.ts';
import { mountTerminal } from './terminal-view.ts';
import './workspace.css';

// The page's script runs: the HTML's "did not finish loading" notice stays hidden.
document.documentElement.dataset.started = '';

/**
 * The learner's workspace page at the seat's root. Every URL is relative to the page, so it works
 * under `http://IP/vm/S/` and under a seat origin of its own. Instructions come rendered (and
 * made inert) by the seat server; the editor's code loads on first use.
 */

interface SeatInfo {
  className: string;
  seat: string;
  endsAt?: string | null;
  instructions: { source: string | null; html: string };
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const here = (rel: string) => new URL(rel, location.href);

// The learner's place (open tool, instructions scrolled and shown, app port) survives a reload.
const placeKey = `ct-workspace:${location.pathname}`;
type Place = { tab?: string; scroll?: number; hidden?: boolean; port?: string };
const place: Place = (() => {
  try {
    return JSON.parse(localStorage.getItem(placeKey) ?? '{}') as Place;
  } catch {
    return {};
  }
})();
const keep = (change: Place): void => {
  Object.assign(place, change);
  try {
    localStorage.setItem(placeKey, JSON.stringify(place));
  } catch {
    // Storage may be off; the place is then not kept.
  }
};

// Header.
const status = $('status');
const terminal = mountTerminal(
  $('terminal'),
  here('terminal/ws'),
  (state, text) => {
    status.dataset.state = state;
    status.textContent = state === 'connected' ? 'connected' : text;
  },
  { releaseTab: true, onClock: (clock) => showClassClock($('clock'), clock) },
);

// Tabs: arrow keys move between them (the WAI-ARIA tabs pattern), Enter/Space/click select.
const tabs = [...document.querySelectorAll<HTMLButtonElement>('[role="tab"]')];
const loaders: Record<string, () => void> = {
  editor: () => {
    void import(here('ui/editor.js').href).then((m: { mountEditor(el: HTMLElement): void }) =>
      m.mountEditor($('panel-editor')),
    );
  },
  browser: () => ($<HTMLIFrameElement>('browser-frame').src = here('browser/').href),
  files: () => ($<HTMLIFrameElement>('files-frame').src = here('files/').href),
  app: () => showApp(),
};
const loaded = new Set<string>();

function select(name: string, focus = false): void {
  for (const tab of tabs) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute('aria-controls')!).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (!loaded.has(name)) {
    loaded.add(name);
    loaders[name]?.();
  }
  if (name === 'terminal') terminal.fit();
  keep({ tab: name });
}
tabs.forEach((tab, i) => {
  const name = tab.id.slice(4);
  tab.addEventListener('click', () => select(name));
  tab.addEventListener('keydown', (e) => {
    const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    e.preventDefault();
    select(tabs[(i + step + tabs.length) % tabs.length]!.id.slice(4), true);
  });
});

// App: the learner's own web app through the seat's route.
const portInput = $<HTMLInputElement>('app-port');
if (place.port) portInput.value = place.port;
function showApp(): void {
  const port = String(Number(portInput.value) || 8000);
  const url = here(`app/${port}/`).href;
  $<HTMLIFrameElement>('app-frame').src = url;
  $<HTMLAnchorElement>('app-open').href = url;
  $('app-port-shown').textContent = port;
  keep({ port });
}
$('app-form').addEventListener('submit', (e) => {
  e.preventDefault();
  showApp();
});

// Instructions: collapsible; code blocks copy or run on click, never on their own.
const instructions = $('instructions');
const toggle = $('toggle-instructions');
function showInstructions(shown: boolean): void {
  instructions.hidden = !shown;
  toggle.setAttribute('aria-expanded', String(shown));
  keep({ hidden: !shown });
  terminal.fit();
}
toggle.addEventListener('click', () => showInstructions(instructions.hidden));
instructions.addEventListener('click', (e) => {
  const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-action]');
  const code = button?.closest('.code-block')?.querySelector('code')?.textContent;
  if (!button || code == null) return;
  if (button.dataset.action === 'copy') {
    void navigator.clipboard?.writeText(code).then(() => (button.textContent = 'Copied'));
    return;
  }
  select('terminal');
  const text = code.endsWith('\n') ? code : `${code}\n`;
  if (terminal.type(text.replace(/\n/g, '\r'))) terminal.focus();
  else status.textContent = 'not connected: try again in a moment';
});
let saving = 0;
instructions.addEventListener('scroll', () => {
  clearTimeout(saving);
  saving = window.setTimeout(() => keep({ scroll: instructions.scrollTop }), 200);
});

async function loadSeat(): Promise<void> {
  const response = await fetch(here('seat.json'));
  if (!response.ok) return;
  const info = (await response.json()) as SeatInfo;
  if (info.className) {
    $('class-name').textContent = info.className;
    document.title = `${info.className} · workspace`;
  }
  $('seat').textContent = info.seat ? `seat ${info.seat}` : '';
  if (!$('clock').textContent) showClock($('clock'), info.endsAt);
  if (info.instructions.html) {
    // Rendered by the seat server with raw HTML escaped and unsafe links refused.
    $('instructions-body').innerHTML = info.instructions.html;
    instructions.scrollTop = place.scroll ?? 0;
  }
}

showInstructions(!place.hidden);
const names = tabs.map((tab) => tab.id.slice(4));
select(place.tab && names.includes(place.tab) ? place.tab : 'terminal');
if (!place.tab || place.tab === 'terminal') terminal.focus();
window.addEventListener('resize', () => terminal.fit());
void loadSeat();
