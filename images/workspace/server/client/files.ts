import './files.css';

/**
 * The seat's file manager page. It talks to the JSON API at `api/…`, relative to the page; the
 * folder shown lives in the URL fragment, which never reaches the server.
 */

interface Entry {
  name: string;
  type: 'file' | 'folder' | 'symlink' | 'other';
  target?: 'file' | 'folder' | 'other' | null;
  size: number;
  modified: string;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const message = $<HTMLParagraphElement>('message');
const tbody = $<HTMLTableSectionElement>('entries');
const viewer = $<HTMLDialogElement>('viewer');

const join = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);
const api = (op: string, params: Record<string, string> = {}) =>
  `api/${op}?${new URLSearchParams(params).toString()}`;

function current(): string {
  return decodeURIComponent(location.hash.slice(1)).replace(/^\/+|\/+$/g, '');
}

function go(dir: string): void {
  location.hash = `/${dir}`;
}

function say(text: string, error = false): void {
  message.textContent = text;
  message.className = error ? 'error' : '';
}

async function call(op: string, init: RequestInit & { params?: Record<string, string> } = {}) {
  const response = await fetch(api(op, init.params), init);
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as {
      error?: { code: string; message: string };
    } | null;
    const error = new Error(body?.error?.message ?? `${response.status} ${response.statusText}`);
    throw Object.assign(error, { code: body?.error?.code, status: response.status });
  }
  return response;
}

const post = (op: string, body: object) =>
  call(op, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

function button(label: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function renderCrumbs(dir: string): void {
  const nav = $('crumbs');
  nav.replaceChildren();
  const parts = dir ? dir.split('/') : [];
  const home = document.createElement('a');
  home.href = '#/';
  home.textContent = 'home';
  nav.append(home);
  parts.forEach((part, i) => {
    const a = document.createElement('a');
    a.href = `#/${parts.slice(0, i + 1).join('/')}`;
    a.textContent = part;
    nav.append(' / ', a);
  });
}

function row(dir: string, entry: Entry): HTMLTableRowElement {
  const path = join(dir, entry.name);
  const isFolder = entry.type === 'folder' || entry.target === 'folder';
  const tr = document.createElement('tr');
  tr.dataset.name = entry.name;
  const name = document.createElement('td');
  const link = document.createElement('span');
  link.className = 'entry-link';
  link.textContent = isFolder ? `${entry.name}/` : entry.name;
  link.addEventListener('click', () => (isFolder ? go(path) : void view(path)));
  name.append(link);
  if (entry.type === 'symlink') name.append(entry.target ? ' (link)' : ' (broken link)');
  const size = document.createElement('td');
  size.className = 'num';
  size.textContent = isFolder ? '' : formatSize(entry.size);
  const modified = document.createElement('td');
  modified.textContent = new Date(entry.modified).toLocaleString();
  const actions = document.createElement('td');
  const download = document.createElement('a');
  download.href = api('download', { path });
  download.textContent = isFolder ? 'Download .tar.gz' : 'Download';
  actions.append(
    download,
    button('Rename', () => void rename(dir, entry.name)),
    button('Delete', () => void remove(path, isFolder)),
  );
  tr.append(name, size, modified, actions);
  return tr;
}

async function refresh(): Promise<void> {
  const dir = current();
  renderCrumbs(dir);
  try {
    const listing = (await (await call('list', { params: { path: dir } })).json()) as {
      entries: Entry[];
      truncated: boolean;
    };
    tbody.replaceChildren(...listing.entries.map((e) => row(dir, e)));
    if (listing.truncated) say('Only the first 10,000 entries are shown.');
  } catch (err) {
    tbody.replaceChildren();
    say(`Cannot list this folder: ${(err as Error).message}`, true);
  }
}

async function view(path: string): Promise<void> {
  try {
    const text = await (await call('view', { params: { path } })).text();
    $('viewer-name').textContent = path;
    $('viewer-text').textContent = text;
    viewer.showModal();
  } catch (err) {
    say(`Cannot open ${path}: ${(err as Error).message}`, true);
  }
}

async function upload(files: Iterable<File>): Promise<void> {
  const dir = current();
  for (const file of files) {
    const path = join(dir, file.name);
    say(`Uploading ${file.name}…`);
    const put = (overwrite: boolean) =>
      call('upload', {
        method: 'PUT',
        body: file,
        params: overwrite ? { path, overwrite: '1' } : { path },
      });
    try {
      await put(false).catch(async (err: { status?: number }) => {
        if (err.status !== 409 || !confirm(`${file.name} exists. Replace it?`)) throw err;
        return put(true);
      });
      say(`Uploaded ${file.name}.`);
    } catch (err) {
      say(`Upload of ${file.name} failed: ${(err as Error).message}`, true);
    }
  }
  await refresh();
}

async function rename(dir: string, name: string): Promise<void> {
  const to = prompt('New name', name);
  if (!to || to === name) return;
  try {
    await post('rename', { from: join(dir, name), to: join(dir, to) });
  } catch (err) {
    say(`Rename failed: ${(err as Error).message}`, true);
  }
  await refresh();
}

async function remove(path: string, isFolder: boolean): Promise<void> {
  if (!confirm(`Delete ${path}${isFolder ? ' and everything in it' : ''}?`)) return;
  try {
    await post('delete', { path });
  } catch (err) {
    say(`Delete failed: ${(err as Error).message}`, true);
  }
  await refresh();
}

$('up').addEventListener('click', () => go(current().split('/').slice(0, -1).join('/')));
$('refresh').addEventListener('click', () => void refresh());
$('archive').addEventListener('click', () => {
  location.href = api('download', { path: current() });
});
$('mkdir').addEventListener('click', async () => {
  const name = prompt('Folder name');
  if (!name) return;
  try {
    await post('mkdir', { path: join(current(), name) });
  } catch (err) {
    say(`New folder failed: ${(err as Error).message}`, true);
  }
  await refresh();
});
const input = $<HTMLInputElement>('upload');
input.addEventListener('change', () => {
  void upload(Array.from(input.files ?? [])).then(() => (input.value = ''));
});
$('viewer-close').addEventListener('click', () => viewer.close());

const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('dragging');
});
drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('dragging');
  void upload(Array.from(e.dataTransfer?.files ?? []));
});

window.addEventListener('hashchange', () => {
  say('');
  void refresh();
});
void refresh();
