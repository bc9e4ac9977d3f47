import { createRequire } from 'node:module';
import type { NextFunction, Request, Response } from 'express';

/**
 * The Functions Framework parses bodies with body-parser before a function runs, and answers a
 * body it cannot parse (malformed JSON, unknown charset) with Express's HTML error page. The HTTP
 * contract promises `{error: {code, message}}` for every error, so this wraps the framework's own
 * body-parser: such a failure becomes a JSON 4xx with code INVALID_REQUEST. It must run before the
 * framework builds its server, i.e. when the functions module is loaded.
 */
type Middleware = (req: Request, res: Response, next: NextFunction) => void;
type Factory = (options?: unknown) => Middleware;

const frameworkRequire = createRequire(
  createRequire(import.meta.url).resolve('@google-cloud/functions-framework'),
);
const bodyParser = frameworkRequire('body-parser') as Record<string, Factory> & {
  __ctWrapped?: boolean;
};

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
