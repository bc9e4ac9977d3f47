import test from 'ava';
import { GoogleError } from 'google-gax';
import { GaxiosError } from 'gaxios';
import {
  ComputeError,
  classifyComputeError,
  type ComputeErrorKind,
} from '../../shared/core/compute-errors.ts';

function expectKind(
  t: import('ava').ExecutionContext,
  err: unknown,
  kind: ComputeErrorKind,
  code: string,
) {
  const c = classifyComputeError(err);
  t.true(c instanceof ComputeError);
  t.is(c.kind, kind, `kind for ${JSON.stringify(err instanceof Error ? err.message : err)}`);
  t.is(c.code, code);
  t.is(c.retryable, kind === 'transient');
  return c;
}

/** What @google-cloud/compute 6 over REST throws: a GaxiosError whose message is the body. */
function gaxiosError(status: number, body: unknown): GaxiosError {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const url = new URL('https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances');
  const config = { url, headers: new Headers({ authorization: 'Bearer ya29.secret-token' }) };
  const response = Object.assign(new Response(text, { status }), { config, data: undefined });
  // gaxios 7 passes the AIP-193 extract as `cause`, which sets `code` to the HTTP status.
  return new GaxiosError(text, config, response as never, { message: text, code: status });
}

function restBody(code: number, reason: string, message: string) {
  return { error: { code, message, errors: [{ message, domain: 'global', reason }] } };
}

// --- HTTP errors as the REST client throws them -----------------------------------------------

test('403 quotaExceeded on the insert call is quota', (t) => {
  const message = "Quota 'CPUS' exceeded.  Limit: 24.0 in region us-central1.";
  const err = gaxiosError(403, {
    error: {
      code: 403,
      message,
      errors: [{ message, domain: 'usageLimits', reason: 'quotaExceeded' }],
    },
  });
  const c = expectKind(t, err, 'quota', 'QUOTA_EXCEEDED');
  t.is(c.httpStatus, 403);
  t.is(c.message, message);
});

test('403 with only a quota message is quota, other 403s are permission problems', (t) => {
  expectKind(
    t,
    gaxiosError(403, {
      error: { code: 403, message: "Quota 'SSD_TOTAL_GB' exceeded. Limit: 500.0" },
    }),
    'quota',
    'QUOTA_EXCEEDED',
  );
  expectKind(
    t,
    gaxiosError(
      403,
      restBody(403, 'forbidden', "Required 'compute.instances.create' permission for 'p'"),
    ),
    'invalid',
    'PERMISSION_DENIED',
  );
});

test('403 rateLimitExceeded and 429 are transient', (t) => {
  expectKind(
    t,
    gaxiosError(403, restBody(403, 'rateLimitExceeded', 'Rate Limit Exceeded')),
    'transient',
    'RATE_LIMITED',
  );
  expectKind(t, gaxiosError(429, 'Too Many Requests'), 'transient', 'RATE_LIMITED');
});

test('404 notFound is not-found', (t) => {
  expectKind(
    t,
    gaxiosError(
      404,
      restBody(404, 'notFound', "The resource 'projects/p/zones/z/instances/x' was not found"),
    ),
    'not-found',
    'RESOURCE_NOT_FOUND',
  );
});

test('409 alreadyExists is already-exists', (t) => {
  expectKind(
    t,
    gaxiosError(
      409,
      restBody(
        409,
        'alreadyExists',
        "The resource 'projects/p/zones/z/instances/x' already exists",
      ),
    ),
    'already-exists',
    'RESOURCE_ALREADY_EXISTS',
  );
});

test('400 invalid field and bad image reference are invalid', (t) => {
  expectKind(
    t,
    gaxiosError(400, restBody(400, 'invalid', "Invalid value for field 'resource.name': 'Bad'")),
    'invalid',
    'INVALID',
  );
  expectKind(
    t,
    gaxiosError(400, { error: { code: 400, message: 'Invalid value for field image' } }),
    'invalid',
    'INVALID_ARGUMENT',
  );
});

test('400 resourceNotReady is transient', (t) => {
  expectKind(
    t,
    gaxiosError(400, restBody(400, 'resourceNotReady', "The resource 'x' is not ready")),
    'transient',
    'HTTP_400',
  );
});

test('5xx answers are transient, with the status as code', (t) => {
  for (const status of [500, 502, 503, 504]) {
    expectKind(
      t,
      gaxiosError(status, restBody(status, 'backendError', 'Internal error')),
      'transient',
      `HTTP_${status}`,
    );
  }
  // A proxy's HTML page instead of JSON.
  expectKind(t, gaxiosError(502, '<html>Bad Gateway</html>'), 'transient', 'HTTP_502');
});

test('a REST error body on its own is classified too', (t) => {
  expectKind(t, restBody(404, 'notFound', 'gone'), 'not-found', 'RESOURCE_NOT_FOUND');
  expectKind(t, restBody(403, 'quotaExceeded', "Quota 'CPUS' exceeded"), 'quota', 'QUOTA_EXCEEDED');
});

test('a 3-digit string status is read as HTTP', (t) => {
  expectKind(t, { code: '503', message: 'unavailable' }, 'transient', 'HTTP_503');
});

// --- Operation errors --------------------------------------------------------------------------

function operation(code: string, message: string, httpErrorStatusCode?: number) {
  return {
    kind: 'compute#operation',
    name: 'operation-1',
    status: 'DONE',
    ...(httpErrorStatusCode ? { httpErrorStatusCode } : {}),
    error: { errors: [{ code, message }] },
  };
}

test('stock-outs in the operation error are stockout, despite httpErrorStatusCode 503', (t) => {
  const msg = "The zone 'projects/p/zones/z' does not have enough resources available.";
  expectKind(
    t,
    operation('ZONE_RESOURCE_POOL_EXHAUSTED', msg, 503),
    'stockout',
    'ZONE_RESOURCE_POOL_EXHAUSTED',
  );
  expectKind(
    t,
    operation('ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS', msg, 503),
    'stockout',
    'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
  );
});

test('an unfamiliar code whose message says the zone is out of capacity is a stockout', (t) => {
  expectKind(
    t,
    operation(
      'SOME_NEW_CAPACITY_CODE',
      'A e2-standard-8 VM instance is currently unavailable in the us-central1-a zone.',
      503,
    ),
    'stockout',
    'SOME_NEW_CAPACITY_CODE',
  );
  expectKind(
    t,
    operation('RESOURCE_NOT_AVAILABLE', 'The requested resource is not available.'),
    'stockout',
    'RESOURCE_NOT_AVAILABLE',
  );
  expectKind(t, operation('SOMETHING_ELSE', 'try again'), 'transient', 'SOMETHING_ELSE');
});

test('QUOTA_EXCEEDED in the operation error is quota', (t) => {
  const c = expectKind(
    t,
    operation('QUOTA_EXCEEDED', "Quota 'CPUS' exceeded. Limit: 8.0", 403),
    'quota',
    'QUOTA_EXCEEDED',
  );
  t.is(c.httpStatus, 403);
});

test('RESOURCE_NOT_FOUND (bad image) and INVALID_FIELD_VALUE in the operation are invalid', (t) => {
  expectKind(
    t,
    operation(
      'RESOURCE_NOT_FOUND',
      "The resource 'projects/cos-cloud/global/images/family/nope' was not found",
      404,
    ),
    'invalid',
    'RESOURCE_NOT_FOUND',
  );
  expectKind(
    t,
    operation('INVALID_FIELD_VALUE', "Invalid value for field 'resource.machineType'"),
    'invalid',
    'INVALID_FIELD_VALUE',
  );
});

test('RESOURCE_ALREADY_EXISTS in the operation is already-exists', (t) => {
  expectKind(
    t,
    operation('RESOURCE_ALREADY_EXISTS', "The resource 'x' already exists", 409),
    'already-exists',
    'RESOURCE_ALREADY_EXISTS',
  );
});

test('operation.error alone (without the operation) is classified', (t) => {
  expectKind(
    t,
    { errors: [{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: 'no capacity' }] },
    'stockout',
    'ZONE_RESOURCE_POOL_EXHAUSTED',
  );
});

test('a known code wins over a generic one next to it; unknown codes are transient', (t) => {
  expectKind(
    t,
    {
      error: {
        errors: [
          { code: 'SOMETHING_GENERIC', message: 'x' },
          { code: 'QUOTA_EXCEEDED', message: 'y' },
        ],
      },
    },
    'quota',
    'QUOTA_EXCEEDED',
  );
  expectKind(t, operation('INTERNAL_ERROR', 'oops', 500), 'transient', 'INTERNAL_ERROR');
});

// --- gax GoogleError with gRPC codes ------------------------------------------------------------

function googleError(code: number, message: string, reason?: string): GoogleError {
  const err = new GoogleError(message);
  err.code = code;
  if (reason) err.reason = reason;
  return err;
}

test('gRPC codes map to kinds', (t) => {
  expectKind(t, googleError(5, 'not found'), 'not-found', 'RESOURCE_NOT_FOUND');
  expectKind(t, googleError(6, 'exists'), 'already-exists', 'RESOURCE_ALREADY_EXISTS');
  expectKind(
    t,
    googleError(10, "The resource 'x' already exists"),
    'already-exists',
    'RESOURCE_ALREADY_EXISTS',
  );
  expectKind(t, googleError(10, 'aborted'), 'transient', 'ABORTED');
  expectKind(t, googleError(3, 'bad field'), 'invalid', 'INVALID_ARGUMENT');
  expectKind(t, googleError(7, "Quota 'CPUS' exceeded. Limit: 8"), 'quota', 'QUOTA_EXCEEDED');
  expectKind(t, googleError(7, 'denied'), 'invalid', 'PERMISSION_DENIED');
  expectKind(t, googleError(8, 'quota', 'RATE_LIMIT_EXCEEDED'), 'transient', 'RATE_LIMITED');
  expectKind(t, googleError(8, "Quota 'CPUS' exceeded"), 'quota', 'QUOTA_EXCEEDED');
  expectKind(t, googleError(14, 'unavailable'), 'transient', 'HTTP_503');
  expectKind(t, googleError(4, 'deadline'), 'transient', 'TIMEOUT');
  expectKind(t, googleError(13, 'internal'), 'transient', 'HTTP_500');
});

// --- Network errors, timeouts, the unknown --------------------------------------------------------

test('network errors are transient with their errno code', (t) => {
  for (const code of ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'EAI_AGAIN']) {
    const err = Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
    expectKind(t, err, 'transient', code);
  }
  expectKind(
    t,
    Object.assign(new Error('socket hang up'), { code: 'ETIMEDOUT' }),
    'transient',
    'TIMEOUT',
  );
  // fetch wraps the socket error in `cause`.
  const wrapped = new TypeError('fetch failed', {
    cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
  });
  expectKind(t, wrapped, 'transient', 'ECONNRESET');
});

test('aborts and timeouts are transient TIMEOUT', (t) => {
  const abort = new Error('The operation was aborted');
  abort.name = 'AbortError';
  expectKind(t, abort, 'transient', 'TIMEOUT');
  expectKind(
    t,
    new Error('Total timeout of API exceeded 600000 milliseconds'),
    'transient',
    'TIMEOUT',
  );
});

test('anything unknown is transient UNKNOWN', (t) => {
  expectKind(t, new Error('something odd'), 'transient', 'UNKNOWN');
  expectKind(t, 'a string', 'transient', 'UNKNOWN');
  expectKind(t, undefined, 'transient', 'UNKNOWN');
  expectKind(t, null, 'transient', 'UNKNOWN');
  expectKind(t, 42, 'transient', 'UNKNOWN');
  expectKind(t, {}, 'transient', 'UNKNOWN');
});

test('a ComputeError passes through unchanged', (t) => {
  const err = new ComputeError('stockout', 'ZONE_RESOURCE_POOL_EXHAUSTED', 'no capacity');
  t.is(classifyComputeError(err), err);
});

test('codes never carry secrets and messages are redacted and bounded', (t) => {
  const secretCode = classifyComputeError({
    error: { errors: [{ code: 'Bearer ya29.abc/def?token=xyz', message: 'x' }] },
  });
  t.is(secretCode.code, 'UNKNOWN');

  const err = gaxiosError(503, 'upstream said Authorization: Bearer ya29.very-secret and more');
  const c = classifyComputeError(err);
  t.false(c.message.includes('ya29.very-secret'));
  t.false(JSON.stringify(c).includes('ya29'));
  t.is(c.code, 'HTTP_503');

  const long = classifyComputeError(new Error('x'.repeat(5000)));
  t.true(long.message.length <= 501);
  // The classified error keeps no reference to the original (whose config holds headers).
  t.is((c as unknown as { cause?: unknown }).cause, undefined);
});

test('toJSON shows kind, code, message and status only', (t) => {
  const c = classifyComputeError(gaxiosError(404, restBody(404, 'notFound', 'gone')));
  t.deepEqual(c.toJSON(), {
    kind: 'not-found',
    code: 'RESOURCE_NOT_FOUND',
    message: 'gone',
    httpStatus: 404,
  });
});
