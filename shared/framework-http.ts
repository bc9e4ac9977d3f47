import { createRequire } from 'node:module';
import type { Request, Response } from 'express';
import { sendError, unavailable } from './http.ts';
import { log } from './log.ts';

/**
 * The Functions Framework runs each HTTP request in a `domain` of its own, to catch what a function
 * throws outside its promise. Creating one turns on Node's async hooks for the whole process, and
 * from then on every promise, timer and socket of every request pays for them: measured in
 * `npm run bench` (join burst), about a third of the join instance's CPU. Every HTTP function here
 * is an httpHandler (shared/http.ts), whose promise holds all it does and never rejects, so this
 * runs HTTP functions without one. What still fails answers 503 in the contract's JSON, as
 * httpHandler does; an exception thrown outside any promise still reaches the framework's
 * process-wide handler, which answers 500 and restarts the instance. Event functions keep the
 * framework's wrapper. Like framework-errors.ts, it must run before the framework builds its
 * server, i.e. when the functions module is loaded. Revisit if the framework drops the domain.
 */
type HttpFunction = (req: Request, res: Response) => unknown;
type Wrapper = (req: Request, res: Response) => void;

const frameworkRequire = createRequire(
  createRequire(import.meta.url).resolve('@google-cloud/functions-framework'),
);
const wrappers = frameworkRequire('./function_wrappers.js') as {
  wrapUserFunction: (fn: unknown, signatureType: string) => Wrapper;
  __ctWrapped?: boolean;
};

function answerFailure(res: Response, error: unknown): void {
  log.error('function failed', { error });
  if (!res.headersSent) sendError(res, unavailable());
}

if (!wrappers.__ctWrapped) {
  const wrapUserFunction = wrappers.wrapUserFunction;
  wrappers.wrapUserFunction = (fn, signatureType) => {
    if (signatureType !== 'http') return wrapUserFunction(fn, signatureType);
    return (req, res) => {
      new Promise((resolve) => resolve((fn as HttpFunction)(req, res))).catch((error: unknown) =>
        answerFailure(res, error),
      );
    };
  };
  wrappers.__ctWrapped = true;
}
