/**
 * What `npm run doctor` expects of a deployed project, as pure functions from what the Google
 * APIs answered to rows of a table. The names and settings mirror deploy.sh; change both together.
 */

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
export const RUNTIME = 'nodejs24';
export const IMAGE_VARIABLES = ['WORKSPACE_IMAGE', 'NEKO_IMAGE', 'CADDY_IMAGE'];
const MUX_PORTS = '30001-30020';
export const FIREWALL_RULES: Record<string, string[]> = {
  'clarateach-http': ['tcp:80'],
  'clarateach-webrtc': [`tcp:${MUX_PORTS}`, `udp:${MUX_PORTS}`],
};

export interface Row {
  check: string;
  ok: boolean;
  detail: string;
}

/** What was read; `null` where the resource does not exist, an Error where it could not be read. */
export interface Facts {
  project: string;
  job: { state: string; schedule: string; topic: string } | null | Error;
  topics: Record<string, boolean | Error>;
  deadLetterSub: { topic: string } | null | Error;
  functions: Record<
    string,
    { state: string; runtime: string; env: Record<string, string> } | null | Error
  >;
  /** image reference → whether the registry has it */
  images: Record<string, boolean | Error>;
  firewalls: Record<
    string,
    { allowed: string[]; disabled: boolean; targetServiceAccounts: string[] } | null | Error
  >;
}

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

function read<T>(check: string, value: T | null | Error, ok: (v: T) => Row[]): Row[] {
  if (value instanceof Error)
    return [{ check, ok: false, detail: `cannot read: ${value.message}` }];
  if (value === null) return [{ check, ok: false, detail: 'missing' }];
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
        ok: fn.state === 'ACTIVE' && fn.runtime === RUNTIME,
        detail: `${fn.state}, ${fn.runtime}`,
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

export function allRows(facts: Facts): Row[] {
  return [
    ...schedulerRows(facts),
    ...pubsubRows(facts),
    ...functionRows(facts),
    ...imageRows(facts),
    ...firewallRows(facts, `clarateach-vm@${facts.project}.iam.gserviceaccount.com`),
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
