import { spawn } from 'node:child_process';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import { attachmentDisposition } from '../http-util.ts';
import { spawnAsLearner } from '../privileges.ts';

/** Pure: the tar arguments for a folder. Symlinks are stored as links (no -h), never followed. */
export function tarArgs(folder: string): string[] {
  return [
    '--create',
    '--gzip',
    '--file=-',
    '--ignore-failed-read',
    `--directory=${path.dirname(folder)}`,
    '--',
    path.basename(folder),
  ];
}

/**
 * Streams a checked, existing folder as a .tar.gz straight from tar's stdout: no temp file. A
 * tar failure cuts the response short, so the browser reports a failed download rather than
 * keeping a truncated archive.
 */
export function streamFolderArchive(folder: string, res: ServerResponse, log: Logger): void {
  // As the learner in every id: a child of root (real id) could take root's capabilities back.
  const tar = spawnAsLearner((ids) =>
    spawn('tar', tarArgs(folder), { stdio: ['ignore', 'pipe', 'pipe'], ...ids }),
  );
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-500);
  });
  res.writeHead(200, {
    'Content-Type': 'application/gzip',
    'Content-Disposition': attachmentDisposition(`${path.basename(folder)}.tar.gz`),
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': 'sandbox',
    'Cache-Control': 'no-store',
  });
  tar.stdout.pipe(res, { end: false });
  res.on('close', () => {
    if (tar.exitCode === null) tar.kill('SIGKILL');
  });
  tar.on('error', (err) => {
    log('ERROR', 'tar failed to start', { error: err.message });
    res.destroy();
  });
  tar.on('close', (code) => {
    if (code === 0) {
      res.end();
      return;
    }
    if (!res.destroyed) log('ERROR', 'tar failed', { code, stderr });
    res.destroy();
  });
}
