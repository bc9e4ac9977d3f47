// @ts-check
// What a command answers: lines on stdout, or a docker exit code with its message on stderr.
import process from 'node:process';

export class DockerError extends Error {
  /** @param {number} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Ends the command with docker's exit `code` and `message`. @param {number} code @param {string} message @returns {never} */
export function die(code, message) {
  throw new DockerError(code, message);
}

/** Writes `text` to stdout as a line. @param {string} text */
export const out = (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
