/**
 * Compute's error shapes: a failed call answers `{error: {code, message, errors: [{message,
 * domain, reason}]}}` with the HTTP status in `code`.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly domain = 'global',
  ) {
    super(message);
  }
}

/** 400 invalid: a field Compute rejects. */
export const invalid = (message: string) => new ApiError(400, 'invalid', message);

/** 404 notFound for a resource of a zone, e.g. `instances/NAME` or `operations/OP`. */
export function notFound(
  project: string,
  zone: string,
  collection: 'instances' | 'operations',
  name: string,
): ApiError {
  return new ApiError(
    404,
    'notFound',
    `The resource 'projects/${project}/zones/${zone}/${collection}/${name}' was not found`,
  );
}

/** 403 quotaExceeded, in Compute's usageLimits domain. */
export const quotaExceeded = (message: string) =>
  new ApiError(403, 'quotaExceeded', message, 'usageLimits');

/** 503 backendError, Compute's transient failure. */
export const backendError = () =>
  new ApiError(503, 'backendError', 'Internal error. Please try again or contact Google Support.');

/** 501 for every path and method the stand-in does not implement. */
export const notServed = (method: string, path: string) =>
  new ApiError(501, 'notImplemented', `The stand-in does not serve ${method} ${path}`);

/** The JSON body Compute answers a failed call with. */
export function errorBody(err: ApiError): Record<string, unknown> {
  return {
    error: {
      code: err.status,
      message: err.message,
      errors: [{ message: err.message, domain: err.domain, reason: err.reason }],
    },
  };
}
