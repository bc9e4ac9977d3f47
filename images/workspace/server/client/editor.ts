import { basicSetup } from 'codemirror';
import { javascript } from '@codemirror/lang-javascript';
import { json } from '@codemirror/lang-json';
import { markdown } from '@codemirror/lang-markdown';
import { python } from '@codemirror/lang-python';
import { yaml } from '@codemirror/lang-yaml';
import { StreamLanguage, type LanguageSupport, type StreamParser } from '@codemirror/language';
import { dockerFile } from '@codemirror/legacy-modes/mode/dockerfile';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import { EditorState, type Extension } from '@codemirror/state';
import { EditorView, keymap } from '@codemirror/view';

/**
 * The workspace's editor, loaded on first use: a tree of the home, tabs of open files, and
 * CodeMirror 6. It reads and saves through the files API (`files/api/…`, relative to the page);
 * a save carries the ETag the file was opened with, and the API answers 412 when the file changed
 * on disk since, which the learner then settles (overwrite, or reload what is on disk).
 */

interface Entry {
  name: string;
  type: 'file' | 'folder' | 'symlink' | 'other';
  target?: 'file' | 'folder' | 'other' | null;
}

interface OpenFile {
  path: string;
  etag: string | null;
  state: EditorState;
  saved: string;
  tab: HTMLButtonElement;
}

const api = (op: string, path: string, extra: Record<string, string> = {}) =>
  new URL(`files/api/${op}?${new URLSearchParams({ path, ...extra })}`, location.href);

const legacy = (parser: StreamParser<unknown>): Extension => StreamLanguage.define(parser);

/** Pure: the highlighting for a file, by its name. */
export function languageFor(path: string): Extension | LanguageSupport | null {
  const name = path.split('/').pop()!.toLowerCase();
  if (name === 'dockerfile' || name.endsWith('.dockerfile')) return legacy(dockerFile);
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : '';
  switch (ext) {
    case 'py':
      return python();
    case 'js':
    case 'mjs':
    case 'cjs':
    case 'jsx':
      return javascript({ jsx: true });
    case 'ts':
    case 'mts':
    case 'tsx':
      return javascript({ typescript: true, jsx: ext === 'tsx' });
    case 'json':
      return json();
    case 'yml':
    case 'yaml':
      return yaml();
    case 'md':
    case 'markdown':
      return markdown();
    case 'sh':
    case 'bash':
    case 'zsh':
      return legacy(shell);
  }
  return name === '.bashrc' || name === '.profile' ? legacy(shell) : null;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Asks the learner how to settle a save conflict: 'overwrite', 'reload' or 'cancel'. */
function askConflict(path: string): Promise<'overwrite' | 'reload' | 'cancel'> {
  const dialog = el('dialog');
  dialog.setAttribute('aria-labelledby', 'conflict-title');
  const title = el('p', '', `${path} changed on disk since you opened it.`);
  title.id = 'conflict-title';
  const bar = el('div', 'bar');
  const choices = [
    ['overwrite', 'Overwrite it with my version'],
    ['reload', 'Discard my changes and reload'],
    ['cancel', 'Cancel'],
  ] as const;
  document.body.append(dialog);
  dialog.append(title, bar);
  return new Promise((resolve) => {
    for (const [value, label] of choices) {
      const b = el('button', '', label);
      b.type = 'button';
      b.dataset.choice = value;
      b.addEventListener('click', () => dialog.close(value));
      bar.append(b);
    }
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve((dialog.returnValue || 'cancel') as 'overwrite' | 'reload' | 'cancel');
    });
    dialog.showModal();
  });
}

export function mountEditor(panel: HTMLElement): void {
  const root = el('div', 'editor');
  const tree = el('nav', 'tree');
  tree.setAttribute('aria-label', 'Files in your home');
  const main = el('div', 'editor-main');
  const tabBar = el('div', 'file-tabs');
  tabBar.setAttribute('role', 'tablist');
  tabBar.setAttribute('aria-label', 'Open files');
  const message = el('p', 'editor-message muted', 'Pick a file on the left. Ctrl+S saves.');
  message.setAttribute('role', 'status');
  const host = el('div', 'editor-host');
  main.append(tabBar, message, host);
  root.append(tree, main);
  panel.append(root);

  const open = new Map<string, OpenFile>();
  let current: OpenFile | null = null;
  const say = (text: string) => (message.textContent = text);

  const view = new EditorView({ parent: host });
  host.hidden = true;

  const markDirty = (file: OpenFile) => {
    const dirty = file.state.doc.toString() !== file.saved;
    file.tab.textContent = `${file.path.split('/').pop()}${dirty ? ' ●' : ''}`;
    file.tab.title = dirty ? `${file.path} (unsaved)` : file.path;
    file.tab.dataset.dirty = String(dirty);
  };

  const extensions = (path: string): Extension[] => [
    basicSetup,
    keymap.of([{ key: 'Mod-s', preventDefault: true, run: () => (void save(), true) }]),
    EditorView.updateListener.of((u) => {
      if (!current || !u.docChanged) return;
      current.state = u.state;
      markDirty(current);
    }),
    languageFor(path) ?? [],
  ];

  function show(file: OpenFile): void {
    if (current) current.state = view.state;
    current = file;
    view.setState(file.state);
    host.hidden = false;
    for (const f of open.values()) f.tab.setAttribute('aria-selected', String(f === file));
    say(`${file.path} · Ctrl+S saves`);
    view.focus();
  }

  async function read(path: string): Promise<{ text: string; etag: string | null } | string> {
    const response = await fetch(api('view', path));
    if (!response.ok) {
      const body = (await response.json().catch(() => null)) as {
        error?: { message?: string };
      } | null;
      return body?.error?.message ?? `could not open ${path} (${response.status})`;
    }
    return { text: await response.text(), etag: response.headers.get('ETag') };
  }

  async function openFile(path: string): Promise<void> {
    const known = open.get(path);
    if (known) return show(known);
    const got = await read(path);
    // Binary and large files are refused by the API with a message (not text / over 1 MB).
    if (typeof got === 'string') return void say(`${path}: ${got}`);
    const tab = el('button');
    tab.type = 'button';
    tab.setAttribute('role', 'tab');
    const file: OpenFile = {
      path,
      etag: got.etag,
      saved: got.text,
      tab,
      state: EditorState.create({ doc: got.text, extensions: extensions(path) }),
    };
    tab.addEventListener('click', () => show(file));
    tabBar.append(tab);
    open.set(path, file);
    markDirty(file);
    show(file);
  }

  async function save(force = false): Promise<void> {
    const file = current;
    if (!file) return;
    const text = view.state.doc.toString();
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    if (!force && file.etag) headers['If-Match'] = file.etag;
    const response = await fetch(api('upload', file.path, { overwrite: '1' }), {
      method: 'PUT',
      headers,
      body: text,
    });
    if (response.status === 412) {
      const choice = await askConflict(file.path);
      if (choice === 'overwrite') return save(true);
      if (choice === 'reload') {
        const got = await read(file.path);
        if (typeof got === 'string') return void say(got);
        file.etag = got.etag;
        file.saved = got.text;
        file.state = EditorState.create({ doc: got.text, extensions: extensions(file.path) });
        if (current === file) view.setState(file.state);
        markDirty(file);
        say(`${file.path} reloaded from disk`);
      }
      return;
    }
    if (!response.ok) {
      const body = (await response.json().catch(() => null)) as {
        error?: { message?: string };
      } | null;
      return void say(`not saved: ${body?.error?.message ?? response.status}`);
    }
    file.etag = response.headers.get('ETag');
    file.saved = text;
    file.state = view.state;
    markDirty(file);
    say(`${file.path} saved`);
  }

  async function list(path: string, into: HTMLElement): Promise<void> {
    const response = await fetch(api('list', path));
    if (!response.ok) return void say(`could not list ${path || 'home'}`);
    const { entries } = (await response.json()) as { entries: Entry[] };
    const ul = el('ul');
    for (const entry of entries) {
      const full = path ? `${path}/${entry.name}` : entry.name;
      const folder = entry.type === 'folder' || entry.target === 'folder';
      const li = el('li');
      const b = el('button', '', folder ? `▸ ${entry.name}` : entry.name);
      b.type = 'button';
      b.dataset.path = full;
      if (folder) {
        b.setAttribute('aria-expanded', 'false');
        b.addEventListener('click', () => {
          const expanded = b.getAttribute('aria-expanded') === 'true';
          b.setAttribute('aria-expanded', String(!expanded));
          b.textContent = `${expanded ? '▸' : '▾'} ${entry.name}`;
          li.querySelector('ul')?.remove();
          if (!expanded) void list(full, li);
        });
      } else {
        b.addEventListener('click', () => void openFile(full));
      }
      li.append(b);
      ul.append(li);
    }
    into.querySelector(':scope > ul')?.remove();
    into.append(ul);
  }

  const refresh = el('button', '', 'Refresh');
  refresh.type = 'button';
  refresh.addEventListener('click', () => void list('', tree));
  tree.append(refresh);
  void list('', tree);
}
