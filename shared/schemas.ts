import { Ajv, type JSONSchemaType, type ValidateFunction } from 'ajv';
import { END_REASONS, type EndReason } from './core/state.ts';
import { WORKSHOP_ID_PATTERN } from './core/ids.ts';
import type { CertificateReport } from './core/workshop.ts';

/**
 * Every HTTP body and event payload, as a TypeScript type and the ajv schema that checks it.
 * `JSONSchemaType<T>` makes the compiler hold each schema to its type, so the two cannot drift.
 */
const ajv = new Ajv({ allErrors: false, strict: true });

const NON_BLANK = '\\S';
// Firestore refuses a string that is not well-formed UTF-16 (a lone surrogate, which a JSON
// `\udfff` escape can carry), and the write would fail as a 5xx: free text must be valid Unicode.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
ajv.addFormat('text', { type: 'string', validate: (value) => !LONE_SURROGATE.test(value) });
// RFC 3339: an ISO time that names its offset, so `09:00` cannot mean the server's zone.
const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d)$/i;
/** A calendar day that exists: Date.parse takes 2026-02-30 as March 2. */
function realDay(value: string): boolean {
  const [y, m, d] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d;
}
ajv.addFormat('date-time', {
  type: 'string',
  validate: (value) => DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)) && realDay(value),
});
/** The workspace page's instructions: Markdown of at most 100 KB (UTF-8), as VM metadata takes. */
export const MAX_INSTRUCTIONS_BYTES = 100 * 1024;
ajv.addFormat('markdown', {
  type: 'string',
  validate: (value) =>
    !LONE_SURROGATE.test(value) && Buffer.byteLength(value) <= MAX_INSTRUCTIONS_BYTES,
});

const workshopId = { type: 'string', pattern: WORKSHOP_ID_PATTERN, maxLength: 32 } as const;

export interface CreateWorkshopBody {
  name: string;
  seats: number;
  durationMinutes?: number;
  image?: string;
  spot?: boolean;
  /** A Spot class may run on standard VMs when no zone has Spot capacity; default true. */
  spotFallback?: boolean;
  /** When the class is to be ready; it then starts itself (issue 21). At most 14 days ahead. */
  startAt?: string;
  /** Seats one client address may hold (a class joining from home); absent: no cap. */
  seatsPerAddress?: number;
  /** Markdown shown beside the learner's tools on the workspace page. */
  instructions?: string;
}
const createWorkshopSchema: JSONSchemaType<CreateWorkshopBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'seats'],
  properties: {
    name: { type: 'string', format: 'text', minLength: 1, maxLength: 100, pattern: NON_BLANK },
    seats: { type: 'integer', minimum: 1, maximum: 200 },
    durationMinutes: { type: 'integer', minimum: 15, maximum: 720, nullable: true },
    // An image reference: a name in the workshop registry (`python:3.12`) or a full path.
    image: {
      type: 'string',
      minLength: 1,
      maxLength: 256,
      pattern: '^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]{1,128})?(@sha256:[a-f0-9]{64})?$',
      nullable: true,
    },
    spot: { type: 'boolean', nullable: true },
    spotFallback: { type: 'boolean', nullable: true },
    startAt: { type: 'string', format: 'date-time', maxLength: 40, nullable: true },
    seatsPerAddress: { type: 'integer', minimum: 1, maximum: 200, nullable: true },
    instructions: {
      type: 'string',
      format: 'markdown',
      maxLength: MAX_INSTRUCTIONS_BYTES,
      nullable: true,
      description: 'Markdown for the workspace page (at most 100 KB); raw HTML is shown as text',
    },
  },
};

export interface ExtendBody {
  minutes: number;
}
const extendSchema: JSONSchemaType<ExtendBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['minutes'],
  properties: { minutes: { type: 'integer', minimum: 1, maximum: 720 } },
};

export interface ResetSeatBody {
  keepHome: boolean;
  /** The seat's own learner, instead of the instructor's identity. */
  seatToken?: string;
}
const resetSeatSchema: JSONSchemaType<ResetSeatBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['keepHome'],
  properties: {
    keepHome: { type: 'boolean' },
    seatToken: { type: 'string', format: 'text', minLength: 1, maxLength: 128, nullable: true },
  },
};

export interface JoinBody {
  code: string;
  name: string;
  seatToken?: string;
}
const joinSchema: JSONSchemaType<JoinBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'name'],
  properties: {
    code: { type: 'string', format: 'text', minLength: 1, maxLength: 32 },
    name: { type: 'string', format: 'text', minLength: 1, maxLength: 60, pattern: NON_BLANK },
    seatToken: { type: 'string', format: 'text', minLength: 1, maxLength: 128, nullable: true },
  },
};

/** A learner raises (or lowers) a hand, with the seatToken join gave them. */
export interface HandBody {
  seatToken: string;
  raised: boolean;
}
const handSchema: JSONSchemaType<HandBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['seatToken', 'raised'],
  properties: {
    seatToken: { type: 'string', format: 'text', minLength: 1, maxLength: 128 },
    raised: { type: 'boolean' },
  },
};

export interface WorkshopStartedEvent {
  workshopId: string;
}
const workshopStartedSchema: JSONSchemaType<WorkshopStartedEvent> = {
  type: 'object',
  additionalProperties: true,
  required: ['workshopId'],
  properties: { workshopId },
};

export interface WorkshopEndedEvent {
  workshopId: string;
  reason: EndReason;
}
const workshopEndedSchema: JSONSchemaType<WorkshopEndedEvent> = {
  type: 'object',
  additionalProperties: true,
  required: ['workshopId', 'reason'],
  properties: { workshopId, reason: { type: 'string', enum: [...END_REASONS] } },
};

export interface VmReadyEvent {
  workshopId: string;
  vmName: string;
  state: 'ready' | 'failed';
  externalIp?: string;
  internalIp?: string;
  /** The port the VM's Caddy serves plain HTTP on; 80 on a real VM, another on the local stack. */
  httpPort?: number;
  /** Seat i of the VM has the HTTPS origin https://IP:(seatHttpsBase + i); 8400 on a real VM. */
  seatHttpsBase?: number;
  seatsReady?: number;
  readyToken: string;
  /** The tail of the startup log when state is `failed`. */
  error?: string;
  /** The seat reset generations the VM applied, "SEAT:GENERATION …" (core/vm-control.ts). */
  seatResets?: string;
  /** The seats' certificate as the VM serves it, in `ready` reports. */
  certificate?: CertificateReport;
}

const UTC_TIME = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,12}Z$';
const ip = { type: 'string', maxLength: 64, pattern: '^[0-9a-fA-F.:]*$', nullable: true } as const;
const vmReadySchema: JSONSchemaType<VmReadyEvent> = {
  type: 'object',
  additionalProperties: true,
  required: ['workshopId', 'vmName', 'state', 'readyToken'],
  properties: {
    workshopId,
    // A Compute Engine instance name (RFC 1035 label).
    vmName: { type: 'string', pattern: '^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$' },
    state: { type: 'string', enum: ['ready', 'failed'] },
    externalIp: ip,
    internalIp: ip,
    httpPort: { type: 'integer', minimum: 1, maximum: 65535, nullable: true },
    seatHttpsBase: { type: 'integer', minimum: 1, maximum: 65535, nullable: true },
    seatsReady: { type: 'integer', minimum: 0, maximum: 200, nullable: true },
    readyToken: { type: 'string', format: 'text', minLength: 1, maxLength: 128 },
    error: { type: 'string', format: 'text', maxLength: 8000, nullable: true },
    seatResets: {
      type: 'string',
      maxLength: 4000,
      pattern: '^([0-9]{1,4}:[0-9]{1,9}( [0-9]{1,4}:[0-9]{1,9})*)?$',
      nullable: true,
    },
    certificate: {
      type: 'object',
      nullable: true,
      additionalProperties: true,
      required: ['checkedAt'],
      properties: {
        notAfter: { type: 'string', pattern: UTC_TIME, nullable: true },
        renewalError: { type: 'string', format: 'text', maxLength: 2000, nullable: true },
        checkedAt: { type: 'string', pattern: UTC_TIME },
      },
    },
  },
};

export type Validator<T> = ValidateFunction<T>;

/** Compiles on first use: ajv generates code per schema, and each function checks one or two. */
function compiled<T>(schema: JSONSchemaType<T>): () => ValidateFunction<T> {
  let validate: ValidateFunction<T> | undefined;
  return () => (validate ??= ajv.compile(schema));
}
const compile = {
  createWorkshop: compiled(createWorkshopSchema),
  extend: compiled(extendSchema),
  resetSeat: compiled(resetSeatSchema),
  join: compiled(joinSchema),
  hand: compiled(handSchema),
  workshopStarted: compiled(workshopStartedSchema),
  workshopEnded: compiled(workshopEndedSchema),
  vmReady: compiled(vmReadySchema),
};

export const validators = {
  get createWorkshop() {
    return compile.createWorkshop();
  },
  get extend() {
    return compile.extend();
  },
  get resetSeat() {
    return compile.resetSeat();
  },
  get join() {
    return compile.join();
  },
  get hand() {
    return compile.hand();
  },
  get workshopStarted() {
    return compile.workshopStarted();
  },
  get workshopEnded() {
    return compile.workshopEnded();
  },
  get vmReady() {
    return compile.vmReady();
  },
};

/** One readable line for the first problem ajv found, e.g. `seats must be <= 200`. */
export function describeErrors(validate: ValidateFunction): string {
  const error = validate.errors?.[0];
  if (!error) return 'invalid';
  const where = error.instancePath ? error.instancePath.slice(1).replace(/\//g, '.') : 'body';
  if (error.keyword === 'additionalProperties') {
    return `${where} has an unknown field: ${String(error.params.additionalProperty)}`;
  }
  if (error.keyword === 'required') {
    return `${where} is missing ${String(error.params.missingProperty)}`;
  }
  if (error.keyword === 'format' && error.params.format === 'text') {
    return `${where} must be valid Unicode text`;
  }
  if (error.keyword === 'format' && error.params.format === 'date-time') {
    return `${where} must be an ISO 8601 time with its offset, e.g. 2026-12-07T09:00:00Z`;
  }
  if (error.keyword === 'pattern' && error.params.pattern === NON_BLANK) {
    return `${where} must not be blank`;
  }
  return `${where} ${error.message ?? 'is invalid'}`;
}
