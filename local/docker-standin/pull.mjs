// @ts-check
// docker pull: records the image; a reference containing "unpullable" cannot be pulled, and no
// image can while the state dir holds a file `registry-offline` (a registry outage).
// docker image inspect: succeeds for images pulled before.
import fs from 'node:fs';
import path from 'node:path';
import { die, out } from './cli.mjs';
import { STATE, dir, sha256, writeJson } from './state-dir.mjs';

const imageFile = (/** @type {string} */ image) => path.join(dir.images, `${sha256(image)}.json`);

/** @param {string[]} args */
export function pull(args) {
  const image =
    args.filter((a) => !a.startsWith('-'))[0] ??
    die(1, '"docker pull" requires exactly 1 argument.');
  if (fs.existsSync(path.join(STATE, 'registry-offline'))) {
    die(
      1,
      `Error response from daemon: Get "https://registry/v2/": dial tcp: lookup registry: no such host`,
    );
  }
  if (image.includes('unpullable')) {
    die(
      1,
      `Error response from daemon: manifest for ${image} not found: manifest unknown: manifest unknown`,
    );
  }
  writeJson(imageFile(image), { image, pulled: new Date().toISOString() });
  out(`Status: Downloaded newer image for ${image}\n${image}`);
}

/** @param {string[]} args */
export function image(args) {
  const [sub, ...refs] = args.filter((a) => !a.startsWith('-'));
  if (sub !== 'inspect') die(1, `docker: 'image ${sub ?? ''}' is not implemented by the stand-in`);
  if (!refs.length) die(1, '"docker image inspect" requires at least 1 argument.');
  const missing = refs.filter((ref) => !fs.existsSync(imageFile(ref)));
  if (missing.length) die(1, missing.map((ref) => `Error: No such image: ${ref}`).join('\n'));
  out(JSON.stringify(refs.map((ref) => ({ Id: `sha256:${sha256(ref)}`, RepoTags: [ref] }))));
}
