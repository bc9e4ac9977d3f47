/**
 * Classifies what the Compute Engine client throws, and what a finished zone operation reports in
 * `operation.error`, into the few kinds the handlers act on. Pure: no I/O.
 *
 * Shapes handled:
 * - GaxiosError (what `@google-cloud/compute` 6 over REST actually throws): numeric HTTP `status`
 *   and `code`, the raw JSON body as `message`, `errors[].reason` inside that body;
 * - GoogleError (gax; what `@google-cloud/compute` 7 over REST throws): numeric gRPC `code`,
 *   `httpStatusCode` when the server answered, `reason` from ErrorInfo, plain `message`; a
 *   network failure is `code` 14 with the Node error code only inside the message;
 * - a REST error body `{error: {code, message, errors: [{reason, domain, message}]}}`;
 * - an operation, or its `error`: `{error: {errors: [{code: 'QUOTA_EXCEEDED', message}]}}`;
 * - Node network errors (`ECONNRESET`, …), aborts and timeouts;
 * - anything else, which counts as transient so the event is retried.
 */

export type ComputeErrorKind =
  'already-exists' | 'not-found' | 'quota' | 'stockout' | 'invalid' | 'transient';

export class ComputeError extends Error {
  override readonly name = 'ComputeError';
  readonly kind: ComputeErrorKind;
  /** UPPER_SNAKE identifier, e.g. QUOTA_EXCEEDED, HTTP_503, TIMEOUT. Never carries secrets. */
  readonly code: string;
  /** HTTP status when one was known. */
  declare readonly httpStatus?: number;

  constructor(kind: ComputeErrorKind, code: string, message: string, httpStatus?: number) {
    super(message);
    this.kind = kind;
    this.code = code;
    if (httpStatus !== undefined) this.httpStatus = httpStatus;
  }

  /** True when trying again later may succeed (the event should be retried). */
  get retryable(): boolean {
    return this.kind === 'transient';
  }

  toJSON(): { kind: ComputeErrorKind; code: string; message: string; httpStatus?: number } {
    return {
      kind: this.kind,
      code: this.code,
      message: this.message,
      ...(this.httpStatus !== undefined ? { httpStatus: this.httpStatus } : {}),
    };
  }
}

const MAX_MESSAGE = 500;

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * Codes are identifiers Google sends (UPPER_SNAKE operation codes, camelCase reasons) or ones we
 * build; anything that does not look like one becomes UNKNOWN, so no free text ends up in a code.
 */
function safeCode(raw: string): string {
  if (/^[A-Z][A-Z0-9_]{0,63}$/.test(raw)) return raw;
  if (/^[a-z][a-zA-Z]{0,63}$/.test(raw))
    return raw.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
  return 'UNKNOWN';
}

/** Keeps messages short and strips what looks like a credential. */
function safeMessage(message: string | undefined, fallback: string): string {
  const text = (message ?? '').trim() || fallback;
  const redacted = text
    .replace(/(bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1[redacted]')
    .replace(/((?:access_token|token|key|secret|password)=)[^&\s"']+/gi, '$1[redacted]')
    .replace(/ya29\.[A-Za-z0-9._-]+/g, '[redacted]');
  return redacted.length > MAX_MESSAGE ? `${redacted.slice(0, MAX_MESSAGE)}…` : redacted;
}

const QUOTA_MESSAGE = /\bquota\b[^.]*\bexceeded\b|QUOTA_EXCEEDED/i;
/** A zone out of capacity, in the words Compute uses when no code says so. */
const STOCKOUT_MESSAGE =
  /RESOURCE_POOL_EXHAUSTED|does not have enough resources available to fulfill the request|is currently unavailable in the [a-z0-9-]+ zone|\bresources? (?:is |are )?not available\b/i;

// ---------------------------------------------------------------------------------------------
// Operation errors: operation.error.errors[].code

const OPERATION_CODES: Record<string, ComputeErrorKind> = {
  QUOTA_EXCEEDED: 'quota',
  ZONE_RESOURCE_POOL_EXHAUSTED: 'stockout',
  ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS: 'stockout',
  REGION_RESOURCE_POOL_EXHAUSTED: 'stockout',
  RESOURCE_POOL_EXHAUSTED: 'stockout',
  // In a finished operation a missing resource is one the request referred to (an image, a
  // network, a machine type): the request itself is wrong.
  RESOURCE_NOT_FOUND: 'invalid',
  INVALID_FIELD_VALUE: 'invalid',
  INVALID_USAGE: 'invalid',
  BAD_REQUEST: 'invalid',
  REQUIRED_FIELD_MISSING: 'invalid',
  UNSUPPORTED_OPERATION: 'invalid',
  FIELD_VALUE_OUT_OF_RANGE: 'invalid',
  RESOURCE_ALREADY_EXISTS: 'already-exists',
  ALREADY_EXISTS: 'already-exists',
};

interface Detail {
  code?: string;
  reason?: string;
  message?: string;
}

function details(list: unknown): Detail[] {
  if (!Array.isArray(list)) return [];
  const out: Detail[] = [];
  for (const item of list) {
    if (!isObj(item)) continue;
    const detail: Detail = {};
    const code = str(item.code);
    const reason = str(item.reason);
    const message = str(item.message);
    if (code !== undefined) detail.code = code;
    if (reason !== undefined) detail.reason = reason;
    if (message !== undefined) detail.message = message;
    out.push(detail);
  }
  return out;
}

function fromOperationErrors(errors: Detail[], httpStatus?: number): ComputeError | undefined {
  const withCode = errors.filter((e) => e.code !== undefined);
  if (withCode.length === 0) return undefined;
  // The most specific known code wins over generic ones that may accompany it.
  for (const e of withCode) {
    const code = safeCode(e.code ?? '');
    const kind = OPERATION_CODES[code];
    if (kind) return new ComputeError(kind, code, safeMessage(e.message, code), httpStatus);
  }
  const first = withCode[0] as Detail;
  const code = safeCode(first.code ?? '');
  if (/QUOTA/.test(code)) {
    return new ComputeError('quota', code, safeMessage(first.message, code), httpStatus);
  }
  if (
    /POOL_EXHAUSTED|STOCKOUT|NOT_AVAILABLE/.test(code) ||
    STOCKOUT_MESSAGE.test(first.message ?? '')
  ) {
    return new ComputeError('stockout', code, safeMessage(first.message, code), httpStatus);
  }
  return new ComputeError('transient', code, safeMessage(first.message, code), httpStatus);
}

// ---------------------------------------------------------------------------------------------
// HTTP errors: status plus errors[].reason

const REASON_KINDS: Record<string, ComputeErrorKind> = {
  notFound: 'not-found',
  alreadyExists: 'already-exists',
  quotaExceeded: 'quota',
  invalid: 'invalid',
  invalidParameter: 'invalid',
  badRequest: 'invalid',
  required: 'invalid',
  resourceNotReady: 'transient',
  rateLimitExceeded: 'transient',
  userRateLimitExceeded: 'transient',
  backendError: 'transient',
  internalError: 'transient',
  conditionNotMet: 'transient',
};

const REASON_CODES: Record<string, string> = {
  notFound: 'RESOURCE_NOT_FOUND',
  alreadyExists: 'RESOURCE_ALREADY_EXISTS',
  quotaExceeded: 'QUOTA_EXCEEDED',
  rateLimitExceeded: 'RATE_LIMITED',
  userRateLimitExceeded: 'RATE_LIMITED',
};

function fromHttp(status: number, message: string | undefined, reasons: Detail[]): ComputeError {
  const msg = safeMessage(message, `HTTP ${status}`);
  // An operation-style code inside an HTTP error (seen with some stock-outs) decides first.
  const op = fromOperationErrors(reasons.filter((r) => r.code && /^[A-Z_]+$/.test(r.code)));
  if (op && op.kind !== 'transient') return new ComputeError(op.kind, op.code, msg, status);

  for (const r of reasons) {
    const reason = r.reason;
    if (reason === undefined) continue;
    const kind = REASON_KINDS[reason];
    if (kind === undefined) continue;
    // Compute answers 400 `invalid` for a bad field and 404 `notFound` for a missing target;
    // a 400 `resourceNotReady` is the target being busy, worth a retry.
    const code =
      REASON_CODES[reason] ?? (kind === 'transient' ? `HTTP_${status}` : safeCode(reason));
    if (kind === 'invalid' && status >= 500) break;
    return new ComputeError(kind, code, msg, status);
  }

  if (QUOTA_MESSAGE.test(message ?? '') && (status === 403 || status === 429)) {
    // 429 / RESOURCE_EXHAUSTED is mostly request-rate limiting; only "Quota … exceeded" counts.
    return new ComputeError('quota', 'QUOTA_EXCEEDED', msg, status);
  }
  if (STOCKOUT_MESSAGE.test(message ?? '')) {
    return new ComputeError('stockout', 'ZONE_RESOURCE_POOL_EXHAUSTED', msg, status);
  }
  switch (status) {
    case 400:
      return new ComputeError('invalid', 'INVALID_ARGUMENT', msg, status);
    case 401:
      // An expired or refreshed credential: worth a retry.
      return new ComputeError('transient', 'UNAUTHENTICATED', msg, status);
    case 403:
      // Permission problems do not heal by retrying the same event.
      return new ComputeError('invalid', 'PERMISSION_DENIED', msg, status);
    case 404:
      return new ComputeError('not-found', 'RESOURCE_NOT_FOUND', msg, status);
    case 409:
      return new ComputeError('already-exists', 'RESOURCE_ALREADY_EXISTS', msg, status);
    case 408:
      return new ComputeError('transient', 'TIMEOUT', msg, status);
    case 429:
      return new ComputeError('transient', 'RATE_LIMITED', msg, status);
    default:
      return new ComputeError('transient', `HTTP_${status}`, msg, status);
  }
}

// ---------------------------------------------------------------------------------------------
// gRPC status codes (GoogleError.code when no HTTP status is known)

const GRPC_HTTP: Record<number, number> = {
  1: 499, // CANCELLED
  2: 500, // UNKNOWN
  3: 400, // INVALID_ARGUMENT
  4: 504, // DEADLINE_EXCEEDED
  5: 404, // NOT_FOUND
  6: 409, // ALREADY_EXISTS
  7: 403, // PERMISSION_DENIED
  8: 429, // RESOURCE_EXHAUSTED
  9: 400, // FAILED_PRECONDITION
  10: 409, // ABORTED
  11: 400, // OUT_OF_RANGE
  12: 501, // UNIMPLEMENTED
  13: 500, // INTERNAL
  14: 503, // UNAVAILABLE
  15: 500, // DATA_LOSS
  16: 401, // UNAUTHENTICATED
};

function fromGrpc(code: number, message: string | undefined, reasons: Detail[]): ComputeError {
  const msg = safeMessage(message, `gRPC status ${code}`);
  switch (code) {
    case 4:
      return new ComputeError('transient', 'TIMEOUT', msg);
    case 6:
      return new ComputeError('already-exists', 'RESOURCE_ALREADY_EXISTS', msg);
    case 8:
      // RESOURCE_EXHAUSTED is how gRPC reports quota; a bare rate limit is transient.
      if (QUOTA_MESSAGE.test(message ?? '') || reasons.some((r) => /quota/i.test(r.reason ?? ''))) {
        return new ComputeError('quota', 'QUOTA_EXCEEDED', msg);
      }
      return new ComputeError('transient', 'RATE_LIMITED', msg);
    case 9:
      return new ComputeError('transient', 'FAILED_PRECONDITION', msg);
    case 10:
      // gax maps HTTP 409 to ABORTED; Compute uses 409 for "already exists".
      if (
        /already exists/i.test(message ?? '') ||
        reasons.some((r) => r.reason === 'alreadyExists')
      ) {
        return new ComputeError('already-exists', 'RESOURCE_ALREADY_EXISTS', msg);
      }
      return new ComputeError('transient', 'ABORTED', msg);
    default: {
      const http = GRPC_HTTP[code];
      if (http === undefined) return new ComputeError('transient', 'UNKNOWN', msg);
      const err = fromHttp(http, message, reasons);
      return new ComputeError(err.kind, err.code, err.message);
    }
  }
}

// ---------------------------------------------------------------------------------------------

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** A REST body, either parsed already or as the JSON text a GaxiosError carries as message. */
function restBody(value: unknown): Obj | undefined {
  if (isObj(value)) return value;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) return parsed.find((x) => isObj(x) && 'error' in x) as Obj;
    return isObj(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function httpStatusOf(err: Obj): number | undefined {
  const response = isObj(err.response) ? err.response : undefined;
  for (const candidate of [
    err.status,
    response?.status,
    err.statusCode,
    err.httpStatusCode,
    err.code,
  ]) {
    const n =
      typeof candidate === 'string' && /^\d{3}$/.test(candidate) ? Number(candidate) : candidate;
    if (typeof n === 'number' && n >= 100 && n < 600) return n;
  }
  return undefined;
}

/** Maps anything the Compute client or an operation reports to a ComputeError. */
export function classifyComputeError(err: unknown): ComputeError {
  if (err instanceof ComputeError) return err;
  if (typeof err === 'string')
    return new ComputeError('transient', 'UNKNOWN', safeMessage(err, 'unknown error'));
  if (!isObj(err)) return new ComputeError('transient', 'UNKNOWN', 'unknown error');

  // An operation, or operation.error: {errors: [{code, message}]}.
  const opError = isObj(err.error) && Array.isArray(err.error.errors) ? err.error : err;
  if (Array.isArray(opError.errors) && !isObj(err.response)) {
    const httpStatus =
      typeof err.httpErrorStatusCode === 'number' ? err.httpErrorStatusCode : undefined;
    const fromOp = fromOperationErrors(details(opError.errors), httpStatus);
    if (fromOp) return fromOp;
  }

  // A REST error body, found on the error itself, on response.data, or as JSON in the message.
  const response = isObj(err.response) ? err.response : undefined;
  const body =
    (isObj(err.error) && ('code' in err.error || 'message' in err.error) ? err : undefined) ??
    restBody(response?.data) ??
    restBody(err.message) ??
    (isObj(err.cause) ? restBody(err.cause.message) : undefined);
  const bodyError = body && isObj(body.error) ? body.error : undefined;
  const reasons = details(bodyError?.errors);
  const gaxReason = str(err.reason);
  if (gaxReason) reasons.push({ reason: gaxReason });
  const message = str(bodyError?.message) ?? str(err.message);

  const status =
    httpStatusOf(err) ??
    (typeof bodyError?.code === 'number' && bodyError.code >= 100 ? bodyError.code : undefined);
  if (status !== undefined) return fromHttp(status, message, reasons);

  const code = err.code;
  // gax 6 reports `connect ECONNREFUSED …` as UNAVAILABLE, naming the Node code in the message.
  const networkCode =
    typeof code === 'string' ? code : /\breason: \w+ ([A-Z][A-Z_]+)\b/.exec(message ?? '')?.[1];
  if (networkCode) {
    const upper = networkCode.toUpperCase();
    if (NETWORK_CODES.has(upper) || upper.startsWith('UND_ERR') || upper.startsWith('ERR_')) {
      const timeout = /TIMEOUT|TIMEDOUT/.test(upper);
      return new ComputeError(
        'transient',
        timeout ? 'TIMEOUT' : safeCode(upper),
        safeMessage(message, upper),
      );
    }
  }
  if (typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 16) {
    return fromGrpc(code, message, reasons);
  }

  const name = str(err.name);
  if (
    name === 'AbortError' ||
    name === 'TimeoutError' ||
    /timed? ?out|timeout/i.test(message ?? '')
  ) {
    return new ComputeError('transient', 'TIMEOUT', safeMessage(message, 'timed out'));
  }
  if (isObj(err.cause)) {
    const inner = classifyComputeError(err.cause);
    if (inner.code !== 'UNKNOWN') return inner;
  }
  if (QUOTA_MESSAGE.test(message ?? '')) {
    return new ComputeError('quota', 'QUOTA_EXCEEDED', safeMessage(message, 'quota exceeded'));
  }
  if (STOCKOUT_MESSAGE.test(message ?? '')) {
    return new ComputeError(
      'stockout',
      'ZONE_RESOURCE_POOL_EXHAUSTED',
      safeMessage(message, 'stockout'),
    );
  }
  return new ComputeError('transient', 'UNKNOWN', safeMessage(message, 'unknown error'));
}
