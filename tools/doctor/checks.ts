/**
 * What `npm run doctor` expects of a deployed project, as pure functions from what the Google
 * APIs answered to rows of a table. The names and settings mirror deploy.sh; change both together.
 * The composite indexes are those of firestore.indexes.json, which deploy.sh creates.
 */
import indexFile from '../../firestore.indexes.json' with { type: 'json' };
import { MAX_SEATS_PER_VM } from '../../shared/core/plan.ts';
import { SEAT_HTTPS_BASE } from '../../shared/core/workshop.ts';

export const SCHEDULER_JOB = 'clarateach-sweep';
export const SWEEP_TOPIC = 'workshop.sweep';
export const TOPICS = ['workshop.started', 'vm.ready', 'workshop.ended', SWEEP_TOPIC];
export const DEAD_LETTER = 'clarateach.dead-letter';
export const DEAD_LETTER_SUB = 'clarateach.dead-letter.sub';
export const FUNCTIONS = [
  'workshops',
  'join',
  'onWorkshopStarted',
  'onVmReady',
  'onWorkshopEnded',
  'sweep',
];
/** The event functions whose deliveries are retried, and so end in the dead-letter topic. */
export const RETRIED = ['onWorkshopStarted', 'onVmReady', 'onWorkshopEnded'];
export const MAX_DELIVERY_ATTEMPTS = 20;
export const INVOKER_ROLE = 'roles/run.invoker';
/** What deploy.sh grants the functions' account on the operator's seat zone, and nowhere else. */
export const DNS_ADMIN_ROLE = 'roles/dns.admin';
/** The functions the portal calls; the event functions are invoked by the functions' account. */
export const HTTP_FUNCTIONS = ['workshops', 'join'];
export const RUNTIME = 'nodejs24';
export const IMAGE_VARIABLES = ['WORKSPACE_IMAGE', 'NEKO_IMAGE', 'CADDY_IMAGE'];
const MUX_PORTS = '30001-30020';
/** Every seat's HTTPS origin, https://IP:(SEAT_HTTPS_BASE + i) for the VM's seat i. */
const SEAT_PORTS = `${SEAT_HTTPS_BASE + 1}-${SEAT_HTTPS_BASE + MAX_SEATS_PER_VM}`;
export const FIREWALL_RULES: Record<string, string[]> = {
  'clarateach-http': ['tcp:80', `tcp:${SEAT_PORTS}`],
  'clarateach-webrtc': [`tcp:${MUX_PORTS}`, `udp:${MUX_PORTS}`],
};

export interface Row {
  check: string;
  ok: boolean;
  detail: string;
}

/** A composite index as `collectionGroup SCOPE field:ORDER ...`, `__name__` left out. */
export function indexKey(
  collectionGroup: string,
  queryScope: string,
  fields: { fieldPath: string; mode: string }[],
): string {
  return [
    collectionGroup,
    queryScope.toUpperCase(),
    ...fields
      .filter((f) => f.fieldPath !== '__name__')
      .map((f) => `${f.fieldPath}:${f.mode.toUpperCase()}`),
  ].join(' ');
}

/** The composite indexes deploy.sh creates, as index keys. */
export const INDEXES = indexFile.indexes.map((i) =>
  indexKey(
    i.collectionGroup,
    i.queryScope,
    i.fields.map((f) => ({ fieldPath: f.fieldPath, mode: f.order })),
  ),
);

export interface Subscription {
  name: string;
  /** the dead-letter topic's full name, '' without a dead-letter policy */
  deadLetterTopic: string;
  maxDeliveryAttempts: number;
}

/** What was read; `null` where the resource does not exist, an Error where it could not be read. */
export interface Facts {
  project: string;
  /** the account deploy.sh let invoke the HTTP functions, when the doctor was told it */
  portalServiceAccount?: string;
  job: { state: string; schedule: string; topic: string } | null | Error;
  topics: Record<string, boolean | Error>;
  deadLetterSub: { topic: string } | null | Error;
  functions: Record<
    string,
    | {
        state: string;
        runtime: string;
        /** requests one instance serves at once (gen2's default: 1) */
        concurrency: number;
        env: Record<string, string>;
        /** the function's Cloud Run service (full name), '' without one */
        service: string;
        /** the Pub/Sub topic of its trigger (full name), '' without one */
        topic: string;
      }
    | null
    | Error
  >;
  /** function → the members holding INVOKER_ROLE on its Cloud Run service; null: no service */
  invokers: Record<string, string[] | null | Error>;
  /** retried function → the subscriptions of its trigger topic; null: no trigger topic */
  triggerSubscriptions: Record<string, Subscription[] | null | Error>;
  /** index key → state (READY, CREATING, NEEDS_REPAIR) of the composite indexes there are */
  indexes: Record<string, string> | Error;
  /** image reference → whether the registry has it */
  images: Record<string, boolean | Error>;
  firewalls: Record<
    string,
    { allowed: string[]; disabled: boolean; targetServiceAccounts: string[] } | null | Error
  >;
  /** the Cloud DNS zone of onWorkshopStarted's SEAT_DNS_ZONE; read only with a SEAT_DOMAIN */
  seatZone?: { dnsName: string; visibility: string } | null | Error;
  /** the members holding DNS_ADMIN_ROLE, unconditioned, on that zone */
  seatZoneAdmins?: string[] | null | Error;
}

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

function read<T>(
  check: string,
  value: T | null | Error,
  ok: (v: T) => Row[],
  missing = 'missing',
): Row[] {
  if (value instanceof Error)
    return [{ check, ok: false, detail: `cannot read: ${value.message}` }];
  if (value === null) return [{ check, ok: false, detail: missing }];
  return ok(value);
}

export function schedulerRows(facts: Facts): Row[] {
  const name = `scheduler job ${SCHEDULER_JOB}`;
  return read(name, facts.job, (job) => [
    { check: `${name}: enabled`, ok: job.state === 'ENABLED', detail: `state ${job.state}` },
    {
      check: `${name}: every minute`,
      ok: job.schedule.trim() === '* * * * *',
      detail: `schedule "${job.schedule}"`,
    },
    {
      check: `${name}: targets ${SWEEP_TOPIC}`,
      ok: job.topic === `projects/${facts.project}/topics/${SWEEP_TOPIC}`,
      detail: job.topic || 'no Pub/Sub target',
    },
  ]);
}

export function pubsubRows(facts: Facts): Row[] {
  const rows: Row[] = [];
  for (const topic of [...TOPICS, DEAD_LETTER]) {
    const found = facts.topics[topic];
    rows.push(
      found instanceof Error
        ? { check: `topic ${topic}`, ok: false, detail: `cannot read: ${found.message}` }
        : { check: `topic ${topic}`, ok: found === true, detail: found ? 'exists' : 'missing' },
    );
  }
  rows.push(
    ...read(`dead-letter subscription ${DEAD_LETTER_SUB}`, facts.deadLetterSub, (sub) => [
      {
        check: `dead-letter subscription ${DEAD_LETTER_SUB}`,
        ok: basename(sub.topic) === DEAD_LETTER,
        detail: `on ${basename(sub.topic)}`,
      },
    ]),
  );
  return rows;
}

export function functionRows(facts: Facts): Row[] {
  return FUNCTIONS.flatMap((name) =>
    read(`function ${name}`, facts.functions[name] ?? null, (fn) => [
      {
        check: `function ${name}`,
        // A class's joins come in one burst: one request per instance starts one cold each.
        ok:
          fn.state === 'ACTIVE' &&
          fn.runtime === RUNTIME &&
          (!HTTP_FUNCTIONS.includes(name) || fn.concurrency > 1),
        detail: `${fn.state}, ${fn.runtime}, ${fn.concurrency} at once`,
      },
    ]),
  );
}

/** The image references the VMs get: those of onWorkshopStarted, which creates them. */
export function imageReferences(facts: Facts): Record<string, string> {
  const fn = facts.functions.onWorkshopStarted;
  const env = fn && !(fn instanceof Error) ? fn.env : {};
  return Object.fromEntries(IMAGE_VARIABLES.map((v) => [v, env[v] ?? '']));
}

export function imageRows(facts: Facts): Row[] {
  return Object.entries(imageReferences(facts)).map(([variable, ref]) => {
    const check = `image ${variable}`;
    if (!ref) return { check, ok: false, detail: 'not set on onWorkshopStarted' };
    if (!/@sha256:[0-9a-f]{64}$/.test(ref))
      return { check, ok: false, detail: `${ref}: not pinned by digest` };
    const found = facts.images[ref];
    if (found instanceof Error)
      return { check, ok: false, detail: `cannot read: ${found.message}` };
    return { check, ok: found === true, detail: found ? ref : `${ref}: not in the registry` };
  });
}

export function firewallRows(facts: Facts, vmServiceAccount: string): Row[] {
  return Object.entries(FIREWALL_RULES).flatMap(([name, allow]) =>
    read(`firewall ${name}`, facts.firewalls[name] ?? null, (rule) => {
      const problems: string[] = [];
      if (rule.disabled) problems.push('disabled');
      if ([...rule.allowed].sort().join(',') !== [...allow].sort().join(','))
        problems.push(`allows ${rule.allowed.join(',') || 'nothing'}, not ${allow.join(',')}`);
      if (!rule.targetServiceAccounts.includes(vmServiceAccount))
        problems.push(`not aimed at ${vmServiceAccount}`);
      return [
        {
          check: `firewall ${name}`,
          ok: problems.length === 0,
          detail: problems.join('; ') || allow.join(','),
        },
      ];
    }),
  );
}

/** The account the functions run as, as deploy.sh names it. */
function functionsAccount(facts: Facts): string {
  return `clarateach-functions@${facts.project}.iam.gserviceaccount.com`;
}

/** Who must be able to invoke each function's Cloud Run service, as deploy.sh grants it. */
function expectedInvoker(facts: Facts, name: string): string | undefined {
  if (!HTTP_FUNCTIONS.includes(name)) return `serviceAccount:${functionsAccount(facts)}`;
  return facts.portalServiceAccount && `serviceAccount:${facts.portalServiceAccount}`;
}

export function invokerRows(facts: Facts): Row[] {
  return FUNCTIONS.flatMap((name) =>
    read(
      `invoker of ${name}`,
      facts.invokers[name] ?? null,
      (members) => {
        const check = `invoker of ${name}`;
        const expected = expectedInvoker(facts, name);
        if (expected)
          return [
            {
              check,
              ok: members.includes(expected),
              detail: members.includes(expected)
                ? expected
                : `${expected} lacks ${INVOKER_ROLE} (has it: ${members.join(', ') || 'nobody'})`,
            },
          ];
        // The portal's account was not given: some service account must hold the role.
        const accounts = members.filter((m) => m.startsWith('serviceAccount:'));
        return [
          {
            check,
            ok: accounts.length > 0,
            detail: accounts.length
              ? `${accounts.join(', ')} (--portal-service-account checks it is the portal's)`
              : `no service account has ${INVOKER_ROLE}`,
          },
        ];
      },
      'no Cloud Run service',
    ),
  );
}

export function deadLetterPolicyRows(facts: Facts): Row[] {
  return RETRIED.flatMap((name) => {
    const check = `dead-letter policy of ${name}'s trigger`;
    return read(
      check,
      facts.triggerSubscriptions[name] ?? null,
      (subs) => {
        if (subs.length === 0)
          return [{ check, ok: false, detail: 'its topic has no subscription' }];
        const wrong = subs.filter(
          (s) =>
            basename(s.deadLetterTopic) !== DEAD_LETTER ||
            s.maxDeliveryAttempts !== MAX_DELIVERY_ATTEMPTS,
        );
        return [
          {
            check,
            ok: wrong.length === 0,
            detail: wrong.length
              ? wrong
                  .map((s) =>
                    s.deadLetterTopic
                      ? `${basename(s.name)}: to ${basename(s.deadLetterTopic)} after ${s.maxDeliveryAttempts}`
                      : `${basename(s.name)}: no dead-letter policy`,
                  )
                  .join('; ')
              : `${subs.map((s) => basename(s.name)).join(', ')}: to ${DEAD_LETTER} after ${MAX_DELIVERY_ATTEMPTS}`,
          },
        ];
      },
      'no Pub/Sub trigger',
    );
  });
}

export function indexRows(facts: Facts): Row[] {
  const { indexes } = facts;
  return INDEXES.map((key) => {
    const check = `index ${key}`;
    if (indexes instanceof Error)
      return { check, ok: false, detail: `cannot read: ${indexes.message}` };
    const state = indexes[key];
    return { check, ok: state === 'READY', detail: state ?? 'missing' };
  });
}

/**
 * onWorkshopStarted's SEAT_DOMAIN and SEAT_DNS_ZONE, read as the functions read them ('' where
 * unset): it writes the names, and deploy.sh gives every function the same pair.
 */
export function seatDomain(facts: Facts): { domain: string; zone: string } {
  const fn = facts.functions.onWorkshopStarted;
  const env = fn && !(fn instanceof Error) ? fn.env : {};
  return {
    domain: (env.SEAT_DOMAIN ?? '').trim().toLowerCase().replace(/\.$/, ''),
    zone: (env.SEAT_DNS_ZONE ?? '').trim(),
  };
}

/** What keeps the functions from naming VMs under `domain` in `zone`, as deploy.sh checks it. */
function seatZoneProblems(
  facts: Facts,
  domain: string,
  zone: string,
  found: { dnsName: string; visibility: string },
): string[] {
  const problems: string[] = [];
  // Let's Encrypt resolves the VMs' names from outside: a private zone never answers it.
  if (found.visibility !== 'public') problems.push(`zone ${zone} is ${found.visibility}`);
  const dnsName = found.dnsName.toLowerCase().replace(/\.?$/, '.');
  if (`${domain}.` !== dnsName && !`${domain}.`.endsWith(`.${dnsName}`))
    problems.push(`${domain} is not in zone ${zone} (${dnsName})`);
  const admins = facts.seatZoneAdmins ?? [];
  if (admins instanceof Error) problems.push(`cannot read: ${admins.message}`);
  else if (!admins.includes(`serviceAccount:${functionsAccount(facts)}`))
    problems.push(`${functionsAccount(facts)} lacks ${DNS_ADMIN_ROLE} on zone ${zone}`);
  return problems;
}

/** The operator's seat domain: no row without one. */
export function seatDomainRows(facts: Facts): Row[] {
  const { domain, zone } = seatDomain(facts);
  const check = 'seat domain';
  if (!domain && !zone) return [];
  // The functions refuse to start with half of the pair.
  if (!domain || !zone) {
    const [has, lacks] = domain
      ? ['SEAT_DOMAIN', 'SEAT_DNS_ZONE']
      : ['SEAT_DNS_ZONE', 'SEAT_DOMAIN'];
    return [{ check, ok: false, detail: `${has} without ${lacks} on onWorkshopStarted` }];
  }
  return read(
    check,
    facts.seatZone ?? null,
    (found) => {
      const problems = seatZoneProblems(facts, domain, zone, found);
      return [
        {
          check,
          ok: problems.length === 0,
          detail:
            problems.join('; ') ||
            `${domain} in public zone ${zone} (${found.dnsName}), the functions' ${DNS_ADMIN_ROLE}`,
        },
      ];
    },
    `zone ${zone} does not exist in ${facts.project}`,
  );
}

export function allRows(facts: Facts): Row[] {
  return [
    ...schedulerRows(facts),
    ...pubsubRows(facts),
    ...functionRows(facts),
    ...invokerRows(facts),
    ...deadLetterPolicyRows(facts),
    ...indexRows(facts),
    ...imageRows(facts),
    ...firewallRows(facts, `clarateach-vm@${facts.project}.iam.gserviceaccount.com`),
    ...seatDomainRows(facts),
  ];
}

/** A plain-text table, one row a line, failures marked. */
export function formatTable(rows: Row[]): string {
  const width = Math.max(5, ...rows.map((r) => r.check.length));
  const lines = [
    `${'check'.padEnd(width)}  status  detail`,
    `${'-'.repeat(width)}  ------  ------`,
  ];
  for (const r of rows)
    lines.push(`${r.check.padEnd(width)}  ${(r.ok ? 'ok' : 'FAIL').padEnd(6)}  ${r.detail}`);
  return `${lines.join('\n')}\n`;
}
