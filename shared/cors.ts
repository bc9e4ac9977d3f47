import type { Request, Response } from '@google-cloud/functions-framework';

/**
 * CORS for `deploy.sh --browser-api`, where browsers call the functions directly: only the origins
 * of `CONSOLE_ORIGINS` get CORS headers. CORS only decides what a page may read; the verified ID
 * token stays the only gate on every instructor route.
 */
export function consoleOrigins(env: NodeJS.ProcessEnv = process.env): Set<string> {
  return new Set(
    (env.CONSOLE_ORIGINS ?? '')
      .split(',')
      .map((o) => o.trim().replace(/\/+$/, ''))
      .filter(Boolean),
  );
}

/**
 * Sets the CORS headers for a listed origin; answers a preflight (204 for a listed origin, 403
 * with no CORS header for any other). True when the request is answered.
 */
export function handleCors(req: Request, res: Response, origins = consoleOrigins()): boolean {
  const origin = req.get('origin');
  const listed = origin !== undefined && origins.has(origin);
  res.vary('Origin');
  if (listed) {
    res.set({
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Allow-Headers': 'Authorization, Content-Type',
      'Access-Control-Allow-Methods': 'GET, POST, DELETE',
      'Access-Control-Max-Age': '600',
    });
  }
  if (req.method !== 'OPTIONS' || !req.get('access-control-request-method')) return false;
  res.status(listed ? 204 : 403).end();
  return true;
}
