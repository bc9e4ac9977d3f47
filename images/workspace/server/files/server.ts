import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { HttpError, sendError, sendJson, splitUrl, staticAssets } from '../http-util.ts';
import type { Logger } from '../log.ts';
import { originMatchesHost } from '../origin.ts';
import { streamFolderArchive } from './archive.ts';
import { httpErrorOf } from './errors.ts';
import { currentEtag, ifMatchHolds, preconditionFailed } from './etag.ts';
import {
  deleteEntry,
  listFolder,
  makeFolder,
  normalized,
  renameEntry,
  sendFile,
  sendText,
} from './operations.ts';
import type { Scope } from './scope.ts';
import { receiveUpload, tooLarge } from './upload.ts';

export interface FilesServerOptions {
  scope: Scope;
  uploadMaxBytes: number;
  assetsDir: string;
  /** The portal's origin, the one other site that may frame the seat's pages. */
  portalOrigin?: string;
  log: Logger;
}

const MAX_JSON = 64 * 1024;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  // Also what keeps a cross-site form from posting here: JSON needs a CORS preflight.
  if (type !== 'application/json') {
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send application/json');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON) throw new HttpError(413, 'TOO_LARGE', 'the request body is too large');
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'INVALID_JSON', 'the body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'INVALID_REQUEST', 'the body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function flag(value: unknown): boolean {
  return value === true || value === '1' || value === 'true';
}

/**
 * The file manager: `GET /` is the page; the JSON API lives under `api/`. Every path is
 * relative to the home folder and checked by the scope before anything touches the disk.
 */
export function createFilesServer(opts: FilesServerOptions): http.Server {
  const { scope, log } = opts;
  const serveAsset = staticAssets(
    opts.assetsDir,
    {
      '/': 'index.html',
      '/files.js': 'files.js',
      '/files.css': 'files.css',
    },
    opts.portalOrigin,
  );

  async function route(req: IncomingMessage, res: ServerResponse, pathname: string) {
    const { query } = splitUrl(req);
    const method = req.method ?? 'GET';
    const reading = method === 'GET' || method === 'HEAD';
    if (!reading && !originMatchesHost(req.headers.origin, req.headers.host)) {
      throw new HttpError(403, 'FORBIDDEN_ORIGIN', 'the request must come from this host');
    }
    const expect = (m: string) => {
      if (method !== m && !(m === 'GET' && method === 'HEAD')) {
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `use ${m}`);
      }
    };
    switch (pathname) {
      case '/api/list':
        expect('GET');
        return sendJson(res, 200, await listFolder(scope, query.get('path') ?? ''));
      case '/api/view':
        expect('GET');
        return sendText(await scope.target(query.get('path')), res);
      case '/api/download': {
        expect('GET');
        const real = await scope.target(query.get('path'));
        if ((await stat(real)).isDirectory()) return streamFolderArchive(real, res, log);
        return sendFile(real, res);
      }
      case '/api/upload': {
        expect('PUT');
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > opts.uploadMaxBytes) throw tooLarge(opts.uploadMaxBytes);
        const dest = await scope.entry(query.get('path'));
        if (!(await stat(path.dirname(dest))).isDirectory()) {
          throw new HttpError(400, 'NOT_A_FOLDER', 'the upload must go into a folder');
        }
        const overwrite = flag(query.get('overwrite'));
        // The editor's save: only over the version it opened (checked, then written: a change in
        // between is a race the learner's own shell would have to win within milliseconds).
        const ifMatch = req.headers['if-match'];
        if (ifMatch !== undefined) {
          const current = await currentEtag(dest);
          if (!ifMatchHolds(ifMatch, current)) throw preconditionFailed(current);
        }
        if (
          !overwrite &&
          (await lstat(dest).then(
            () => true,
            () => false,
          ))
        ) {
          throw new HttpError(409, 'EXISTS', 'a file by that name exists; ask to overwrite');
        }
        const max = opts.uploadMaxBytes;
        const size = await receiveUpload(req, dest, { overwrite, maxBytes: max });
        log('INFO', 'uploaded', { bytes: size });
        const etag = await currentEtag(dest);
        if (etag) res.setHeader('ETag', etag);
        return sendJson(res, 201, { path: normalized(query.get('path')), size });
      }
      case '/api/mkdir': {
        expect('POST');
        const body = await readJson(req);
        return sendJson(res, 201, await makeFolder(scope, body.path));
      }
      case '/api/rename': {
        expect('POST');
        const body = await readJson(req);
        return sendJson(
          res,
          200,
          await renameEntry(scope, body.from, body.to, flag(body.overwrite)),
        );
      }
      case '/api/delete': {
        expect('POST');
        const body = await readJson(req);
        return sendJson(res, 200, await deleteEntry(scope, body.path));
      }
    }
    expect('GET');
    if (!(await serveAsset(pathname, res))) throw new HttpError(404, 'NOT_FOUND', 'no such page');
  }

  const server = http.createServer((req, res) => {
    const { pathname } = splitUrl(req);
    req.on('error', () => {});
    res.on('finish', () => {
      log('INFO', 'request', { method: req.method, path: pathname, status: res.statusCode });
    });
    route(req, res, pathname).catch((err: unknown) => {
      const known = httpErrorOf(err);
      if (!known) log('ERROR', 'request failed', { path: pathname, error: String(err) });
      // The body may still be arriving (a refused upload): answer, then close the connection.
      if (!req.complete) res.setHeader('Connection', 'close');
      if (known) sendError(res, known);
      else sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
    });
  });
  server.on('clientError', (_err, socket) => {
    socket.on('error', () => {});
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  return server;
}
