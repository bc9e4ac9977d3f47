/**
 * The OpenAPI 3.1 document of the HTTP contract (DESIGN.md §5), with request bodies generated from
 * the very ajv schemas the functions validate with. `npm run openapi` rewrites openapi.json;
 * test/unit/openapi.test.ts fails when the file and the schemas drift apart.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { validators } from '../shared/schemas.ts';

type Schema = Record<string, unknown>;

/** ajv's `nullable: true` (OpenAPI 3.0 style) becomes a JSON Schema 2020-12 type union. */
export function toJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Schema = {};
  const { nullable, ...rest } = schema as Schema;
  for (const [key, value] of Object.entries(rest)) out[key] = toJsonSchema(value);
  if (nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  return out;
}

const ERROR_CODES = [
  'INVALID_REQUEST',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_AN_INSTRUCTOR',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'INVALID_STATE',
  'QUOTA_EXCEEDED',
  'LIMIT_REACHED',
  'CODE_NOT_FOUND',
  'NOT_READY',
  'WORKSHOP_FULL',
  'RATE_LIMITED',
  'SEAT_LIMIT',
  'SEAT_FREED',
  'UNAVAILABLE',
];

const json = (ref: string) => ({
  'application/json': { schema: { $ref: `#/components/schemas/${ref}` } },
});
const ok = (status: string, description: string, ref = 'Workshop') => ({
  [status]: { description, content: json(ref) },
});
const errors = (...statuses: string[]) =>
  Object.fromEntries(statuses.map((s) => [s, { $ref: `#/components/responses/Error${s}` }]));
const body = (ref: string) => ({ required: true, content: json(ref) });
const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

export function openApiDocument(): Schema {
  return {
    openapi: '3.1.0',
    info: {
      title: 'ClaraTeach provisioner',
      version: '1',
      description:
        'What the portal calls. In production `workshops` and `join` are two functions with their own URLs; in the local stack both are served on one port. Every error is `{"error": {"code", "message"}}` with a 4xx status (503 only when a dependency fails).',
    },
    paths: {
      '/workshops': {
        post: {
          summary: 'Create a workshop',
          requestBody: body('CreateWorkshopBody'),
          description:
            "With `startAt` the class starts itself: the sweep provisions it at `startAt` minus a lead learned from how long this deployment's VMs took (p90 of recent boots of its machine type, zone and image, plus 2 minutes; 10 minutes until 5 boots are known; at most 30), so that it is ready by `startAt`. Its time limit counts from `startAt` (or from ready, when later); `estimatedCost` counts the early minutes. Cancelling it (DELETE) before it starts costs nothing; a start by hand starts it now as an ordinary class.",
          responses: {
            ...ok('201', 'the workshop, status created'),
            ...errors('400', '401', '403'),
          },
        },
        get: {
          summary: "The caller's workshops",
          responses: {
            ...ok('200', '{workshops: [...]}', 'WorkshopList'),
            ...errors('401', '403'),
          },
        },
      },
      '/workshops/{id}': {
        parameters: [id],
        get: {
          summary: 'One workshop',
          responses: { ...ok('200', 'the workshop'), ...errors('401', '403', '404') },
        },
        delete: {
          summary: 'End a workshop',
          responses: {
            ...ok('202', 'the workshop, status ending (or ended)'),
            ...errors('401', '403', '404'),
          },
        },
      },
      '/workshops/{id}/start': {
        parameters: [id],
        post: {
          summary: 'Provision the VMs (idempotent)',
          responses: {
            ...ok('202', 'the workshop, status provisioning'),
            ...errors('401', '403', '404', '409'),
          },
        },
      },
      '/workshops/{id}/extend': {
        parameters: [id],
        post: {
          summary: 'Extend the time limit (capped)',
          requestBody: body('ExtendBody'),
          responses: {
            ...ok('200', 'the workshop with the later expiresAt'),
            ...errors('400', '401', '403', '404', '409'),
          },
        },
      },
      '/workshops/{id}/ssh-key': {
        parameters: [id],
        get: {
          summary: 'The OpenSSH private key of the VMs (admins only)',
          responses: {
            '200': {
              description: 'the key',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...errors('401', '403', '404'),
          },
        },
      },
      '/workshops/{id}/seats/{n}': {
        parameters: [
          id,
          { name: 'n', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } },
        ],
        delete: {
          summary:
            'Free a seat: its old seatToken no longer rejoins, the VM gives it a new credential, new containers and an empty home; it is handed out again once the VM confirms (idempotent)',
          responses: { ...ok('200', 'the workshop'), ...errors('401', '403', '404', '409') },
        },
      },
      '/workshops/{id}/seats/{n}/reset': {
        parameters: [
          id,
          { name: 'n', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } },
        ],
        post: {
          summary:
            "A fresh container for the seat, keeping or wiping its home; same learner and credential. The instructor, or the seat's learner with their seatToken in the body (no identity needed). A repeat while the VM has not applied the last reset changes nothing.",
          requestBody: body('ResetSeatBody'),
          responses: {
            '202': {
              description: 'the reset, as {workshopId, seat, keepHome, generation}',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            ...errors('400', '401', '403', '404', '409'),
          },
        },
      },
      '/workshops/{id}/seats': {
        parameters: [id],
        get: {
          summary:
            'The room: every seat, who joined it and when, the hands up, and each seat’s read-only terminal URL (watch) with the class’s viewer credential',
          responses: { ...ok('200', 'the room', 'Room'), ...errors('401', '404') },
        },
      },
      '/workshops/{id}/hands/{n}': {
        parameters: [
          id,
          { name: 'n', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } },
        ],
        delete: {
          summary: 'Clear seat n’s raised hand',
          responses: { ...ok('200', 'the room', 'Room'), ...errors('401', '404') },
        },
      },
      '/join/hand': {
        post: {
          summary:
            'A learner raises or lowers a hand with their seatToken (deployed: POST {join URL}/hand)',
          requestBody: body('HandBody'),
          responses: {
            '200': {
              description: '{seat, raised, raisedAt}',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            ...errors('400', '404', '409'),
          },
        },
      },
      '/join': {
        post: {
          summary: 'Take a seat with a join code (again with seatToken: the same seat)',
          parameters: [
            {
              name: 'x-clarateach-client-ip',
              in: 'header',
              required: false,
              description:
                "the learner's address, forwarded by the portal: unknown codes are counted per address (IPv6: per /64), and so are seats when the workshop sets seatsPerAddress",
              schema: { type: 'string' },
            },
          ],
          requestBody: body('JoinBody'),
          responses: {
            ...ok('200', 'the seat', 'JoinResult'),
            ...errors('400', '404', '409', '429'),
          },
        },
      },
    },
    components: {
      schemas: {
        CreateWorkshopBody: toJsonSchema(validators.createWorkshop.schema),
        ExtendBody: toJsonSchema(validators.extend.schema),
        ResetSeatBody: toJsonSchema(validators.resetSeat.schema),
        JoinBody: toJsonSchema(validators.join.schema),
        HandBody: toJsonSchema(validators.hand.schema),
        Room: {
          type: 'object',
          required: ['seats', 'hands'],
          properties: {
            seats: {
              type: 'array',
              items: {
                type: 'object',
                required: ['seat', 'vmName', 'learner', 'handRaisedAt', 'watch'],
                properties: {
                  seat: { type: 'integer' },
                  vmName: { type: 'string' },
                  learner: {
                    type: ['object', 'null'],
                    properties: {
                      name: { type: 'string' },
                      joinedAt: { type: 'string', format: 'date-time' },
                    },
                  },
                  handRaisedAt: { type: ['string', 'null'], format: 'date-time' },
                  watch: {
                    type: ['string', 'null'],
                    description:
                      'the seat’s terminal, read-only: `https://IP:PORT/vm/S/watch/?v=VIEWER` on the seat’s origin; its socket is `wss` beside it. Null until the seat’s VM serves',
                  },
                },
              },
            },
            hands: {
              type: 'array',
              description: 'oldest first',
              items: {
                type: 'object',
                required: ['seat', 'name', 'raisedAt'],
                properties: {
                  seat: { type: 'integer' },
                  name: { type: 'string' },
                  raisedAt: { type: 'string', format: 'date-time' },
                },
              },
            },
          },
        },
        Workshop: {
          type: 'object',
          description:
            'DESIGN.md §5: id, name, status, seats, seatsReady, seatsTaken, joinCode, times, vms, estimatedCost, …',
          required: ['id', 'name', 'status', 'seats'],
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            status: {
              type: 'string',
              enum: ['created', 'provisioning', 'ready', 'ending', 'ended', 'failed'],
            },
            seats: { type: 'integer' },
            spot: { type: 'boolean', description: 'the class asked for Spot VMs' },
            spotFallback: {
              type: 'boolean',
              description: 'a Spot VM with no Spot capacity in any zone may run as a standard VM',
            },
            startAt: {
              type: ['string', 'null'],
              format: 'date-time',
              description:
                'when a scheduled class is to be ready; null for a class started by hand',
            },
            schedule: {
              type: ['object', 'null'],
              description: 'the plan of a scheduled class',
              required: [
                'startAt',
                'provisionAt',
                'leadSeconds',
                'leadBasis',
                'bootSamples',
                'bootP90Seconds',
                'summary',
                'warning',
              ],
              properties: {
                startAt: { type: 'string', format: 'date-time' },
                provisionAt: {
                  type: 'string',
                  format: 'date-time',
                  description: 'when the sweep starts provisioning it: startAt − lead',
                },
                leadSeconds: { type: 'integer' },
                leadBasis: { type: 'string', enum: ['default', 'recent-boots'] },
                bootSamples: { type: 'integer', description: 'recent boots the lead is from' },
                bootP90Seconds: { type: ['integer', 'null'] },
                summary: {
                  type: 'string',
                  description:
                    'e.g. "ready by 09:00 UTC, provisioning starts 08:49 UTC (p90 of 12 recent boots: 8 m 40 s)"',
                },
                warning: {
                  type: ['string', 'null'],
                  description:
                    "the region's quotas looked short when it was scheduled (checked again when it starts)",
                },
              },
            },
            late: {
              type: 'boolean',
              description: 'a scheduled class not ready at startAt, or ready only after it',
            },
            lateBySeconds: {
              type: ['integer', 'null'],
              description: 'how late: growing until ready, then fixed',
            },
            seatsPerAddress: {
              type: ['integer', 'null'],
              description: 'seats one client address (IPv6: one /64) may hold; null: no cap',
            },
            vms: {
              type: 'array',
              items: {
                type: 'object',
                required: [
                  'name',
                  'status',
                  'externalIp',
                  'publicHost',
                  'zone',
                  'spot',
                  'moved',
                  'certificate',
                ],
                properties: {
                  name: { type: 'string' },
                  status: {
                    type: 'string',
                    enum: ['pending', 'booting', 'ready', 'failed', 'deleted'],
                  },
                  externalIp: { type: ['string', 'null'] },
                  publicHost: {
                    type: ['string', 'null'],
                    description:
                      "its name under the operator's SEAT_DOMAIN, which its seats' origins carry (https://publicHost:PORT); null: they carry externalIp",
                  },
                  zone: { type: 'string', description: 'where it is, or is being tried' },
                  spot: { type: 'boolean' },
                  moved: {
                    type: ['string', 'null'],
                    description:
                      'why it is not where it first tried, e.g. "VM 2 moved to us-central1-b: us-central1-a was out of e2-standard-8"',
                  },
                  certificate: {
                    type: ['object', 'null'],
                    description:
                      "the seats' HTTPS certificate as the VM last reported it; null until it has",
                    required: ['notAfter', 'renewalError'],
                    properties: {
                      notAfter: { type: ['string', 'null'], format: 'date-time' },
                      renewalError: {
                        type: ['string', 'null'],
                        description:
                          "what the VM's Caddy said last of renewing it, when that failed",
                      },
                    },
                  },
                },
              },
            },
          },
        },
        WorkshopList: {
          type: 'object',
          required: ['workshops'],
          properties: {
            workshops: { type: 'array', items: { $ref: '#/components/schemas/Workshop' } },
          },
        },
        JoinResult: {
          type: 'object',
          required: ['workshopId', 'seat', 'seatToken', 'endpoints', 'expiresAt'],
          properties: {
            workshopId: { type: 'string' },
            seat: { type: 'integer' },
            seatToken: { type: 'string' },
            endpoints: {
              type: 'object',
              required: ['terminal', 'files', 'browser', 'workspace'],
              properties: Object.fromEntries(
                // The seat's own HTTPS origin (a port of its VM's IP); the path ends with `/`
                // (the pages there use relative URLs); `?t=` follows, once: the first visit
                // exchanges it for the seat's cookie and drops it from the URL.
                ['terminal', 'files', 'browser', 'workspace'].map((k) => [
                  k,
                  { type: 'string', format: 'uri', pattern: '^https://[^?#]*/(\\?[^#]*)?$' },
                ]),
              ),
            },
            expiresAt: { type: 'string', format: 'date-time' },
          },
        },
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { type: 'string', enum: ERROR_CODES },
                message: { type: 'string' },
              },
            },
          },
        },
      },
      responses: Object.fromEntries(
        ['400', '401', '403', '404', '409', '429'].map((s) => [
          `Error${s}`,
          { description: `error ${s}`, content: json('Error') },
        ]),
      ),
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(
    new URL('../openapi.json', import.meta.url),
    `${JSON.stringify(openApiDocument(), null, 2)}\n`,
  );
}
