import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Request, Response } from '@google-cloud/functions-framework';
import { validators } from '../schemas.ts';

/**
 * The console (`/`, `/assets/…`, served by `workshops`) and the join page (`GET` on `join`), built
 * by web/bundle.ts into dist/web of the deployed source (or of the checkout, for the local stack).
 * Pages carry no secret: their settings are public, and every call they make is authenticated.
 */
function projectRoot(from: string): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) {
    dir = path.dirname(dir);
  }
  return dir;
}
const WEB_DIR = path.join(projectRoot(path.dirname(fileURLToPath(import.meta.url))), 'dist', 'web');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};
const ASSET = /^\/assets\/([A-Za-z0-9_-]{1,64}\.(?:js|css))$/;

/** A page's settings as JSON in its HTML; `<` is escaped so no value can close the script. */
function withConfig(html: string, settings: object): string {
  const json = JSON.stringify(settings).replace(/</g, '\\u003c');
  return html.replace(
    '<!--CONFIG-->',
    () => `<script id="config" type="application/json">${json}</script>`,
  );
}

/** A browser asking for a page, not a client asking for JSON. */
const wantsPage = (req: Request) =>
  req.method === 'GET' && (req.get('accept') ?? '').includes('text/html');

async function send(res: Response, file: string, type: string, transform = (t: string) => t) {
  let text: string;
  try {
    text = await readFile(path.join(WEB_DIR, file), 'utf8');
  } catch {
    res
      .status(404)
      .json({ error: { code: 'NOT_FOUND', message: 'the pages are not built (npm run build)' } });
    return;
  }
  res.status(200).type(type).set('Cache-Control', 'no-cache').send(transform(text));
}

/** The instructor's console at the root and its assets. True when the request was a page's. */
export async function serveConsole(req: Request, res: Response): Promise<boolean> {
  const asset = req.method === 'GET' ? ASSET.exec(req.path) : null;
  if (asset) {
    await send(res, path.join('assets', asset[1]!), TYPES[path.extname(asset[1]!)]!);
    return true;
  }
  if (!(req.path === '/' && wantsPage(req))) return false;
  const authMode = process.env.AUTH_MODE === 'dev' ? 'dev' : 'token';
  const settings = {
    auth: authMode,
    // Google sign-in's client id is the audience the functions accept for its ID tokens.
    googleClientId: (
      process.env.CONSOLE_GOOGLE_CLIENT_ID ??
      process.env.ID_TOKEN_AUDIENCES ??
      ''
    ).split(',')[0],
    joinUrl: process.env.JOIN_PAGE_URL || `${req.protocol}://${req.get('host')}/join`,
    createSchema: validators.createWorkshop.schema,
  };
  await send(res, 'console.html', 'html', (html) => withConfig(html, settings));
  return true;
}

/**
 * The learner's join page (a browser's `GET`; `POST` is the API, and a `GET` asking for JSON stays
 * a 405). True when the request was the page's.
 */
export async function serveJoinPage(req: Request, res: Response): Promise<boolean> {
  if (!wantsPage(req)) return false;
  await send(res, 'join.html', 'html');
  return true;
}
