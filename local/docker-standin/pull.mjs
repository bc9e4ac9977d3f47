// @ts-check
// docker pull: records the image; a reference containing "unpullable" cannot be pulled.
import path from 'node:path';
import { die, out } from './cli.mjs';
import { dir, sha256, writeJson } from './state-dir.mjs';

/** @param {string[]} args */
export function pull(args) {
  const image =
    args.filter((a) => !a.startsWith('-'))[0] ??
    die(1, '"docker pull" requires exactly 1 argument.');
  if (image.includes('unpullable')) {
    die(
      1,
      `Error response from daemon: manifest for ${image} not found: manifest unknown: manifest unknown`,
    );
  }
  const file = path.join(dir.images, `${sha256(image)}.json`);
  writeJson(file, { image, pulled: new Date().toISOString() });
  out(`Status: Downloaded newer image for ${image}\n${image}`);
}
