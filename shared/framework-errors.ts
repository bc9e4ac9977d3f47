import { createRequire } from 'node:module';
import type { NextFunction, Request, Response } from 'express';

/**
 * Two requests fail inside the Functions Framework, before a function runs, and get Express's
 * HTML error page: a body it cannot parse (malformed JSON, unknown charset) and a path that is not
 * valid percent-encoding (`/workshops/%ZZ`, which Express fails to decode for its `/{*splat}`
 * route). The HTTP contract promises `{error: {code, message}}` for every error, so this wraps the
 * framework's own body-parser and router: such failures become a JSON 4xx with code
 * INVALID_REQUEST. It must run before the framework builds its server, i.e. when the functions
 * module is loaded. Revisit if the framework gains an error hook.
 */
type Middleware = (req: Request, res: Response, next: NextFunction) => void;
type Factory = (options?: unknown) => Middleware;

const frameworkRequire = createRequire(
  createRequire(import.meta.url).resolve('@google-cloud/functions-framework'),
);
const bodyParser = frameworkRequire('body-parser') as Record<string, Factory> & {
  __ctWrapped?: boolean;
};
// Express's own router (express 5 routes with the `router` package).
const Router = createRequire(frameworkRequire.resolve('express'))('router') as {
  prototype: { handle: Handle; __ctWrapped?: boolean };
};
type Handle = (req: Request, res: Response, callback: (error?: unknown) => void) => void;

function answerParseErrors(factory: Factory): Factory {
  return (options) => {
    const parse = factory(options);
    return (req, res, next) =>
      parse(req, res, (error?: unknown) => {
        const status = (error as { status?: number } | undefined)?.status;
        if (!error || !status || status >= 500) {
          next(error);
          return;
        }
        res.status(status).json({
          error: {
            code: 'INVALID_REQUEST',
            message:
              status === 400
                ? 'the request body is not valid JSON'
                : 'the request body cannot be read',
          },
        });
      });
  };
}

if (!bodyParser.__ctWrapped) {
  for (const kind of ['json', 'text', 'urlencoded', 'raw']) {
    bodyParser[kind] = answerParseErrors(bodyParser[kind]!);
  }
  bodyParser.__ctWrapped = true;
}

if (!Router.prototype.__ctWrapped) {
  const handle = Router.prototype.handle;
  Router.prototype.handle = function (this: unknown, req, res, callback) {
    handle.call(this, req, res, (error?: unknown) => {
      if (error instanceof URIError && !res.headersSent) {
        res.status(400).json({
          error: {
            code: 'INVALID_REQUEST',
            message: 'the request path is not valid percent-encoding',
          },
        });
        return;
      }
      callback(error);
    });
  };
  Router.prototype.__ctWrapped = true;
}
