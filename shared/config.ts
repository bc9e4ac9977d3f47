import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isZone, regionOf } from './core/placement.ts';

/**
 * `token`: the instructor is whoever a verified ID token says (the deployed default); `dev`: the
 * local stack, where a request without a name is the development instructor.
 */
export type AuthMode = 'token' | 'dev';

/** An ID-token issuer and the URL of its published signing keys (PEM, keyed by `kid`). */
export interface TokenIssuer {
  issuer: string;
  certsUrl: string;
}

/** The signing keys of the two issuers a portal signs in with, when none is given. */
const GOOGLE_CERTS = 'https://www.googleapis.com/oauth2/v1/certs';
const IDENTITY_PLATFORM_CERTS =
  'https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com';

/**
 * `INSTRUCTORS`: the operator's list. An email names one account (a service account too); `@domain`
 * names a Google Workspace domain, checked against the token's `hd` claim, which only Google sets
 * for an account that domain manages: an email in the domain alone is not enough.
 */
export interface Instructors {
  emails: ReadonlySet<string>;
  domains: ReadonlySet<string>;
}

export interface Config {
  project: string;
  /** The zones VMs may go to, in order of preference; all in one region. */
  zones: string[];
  /** The region of the zones, whose quotas `start` checks. */
  region: string;
  /** Artifact Registry path the VM images come from, e.g. us-central1-docker.pkg.dev/P/clarateach. */
  registry: string;
  useSpot: boolean;
  images: { workspace: string; neko: string; caddy: string };
  vm: {
    sourceImage: string;
    diskSizeGb: number;
    serviceAccount?: string;
    network?: string;
    /** Required on a custom-mode network: a subnetwork name (in the zone's region) or path. */
    subnetwork?: string;
  };
  /** How long one insert or delete waits for its zone operation before retrying the event. */
  operationTimeoutMs: number;
  /** host:port of the local Compute Engine stand-in; unset in production. */
  computeEndpoint?: { host: string; port: number };
  /**
   * Whether a VM's `vm.ready` may name Caddy's port (the local stack, where every VM shares
   * loopback); a real VM serves on 80, whatever its report says.
   */
  acceptReportedHttpPort: boolean;
  provisioningTimeoutMinutes: number;
  maxDurationMinutes: number;
  /** Unknown join codes one client address may try per 10 minutes. */
  joinMissLimit: number;
  /** What one instructor may run at once (workshops provisioning, ready or ending). */
  instructorLimits: { activeWorkshops: number; activeSeats: number };
  /** Image repositories a workshop may use besides the registry, as path prefixes. */
  imageAllowlist: string[];
  /** Workshops created but never started are cleaned up after this long. */
  unstartedTtlMinutes: number;
  auth: {
    mode: AuthMode;
    admins: ReadonlySet<string>;
    /** Who may act as an instructor with a verified token: emails, and `@domain` entries. */
    instructors: Instructors;
    issuers: TokenIssuer[];
    audiences: string[];
  };
  startupScript: string;
  /** The VM watcher, shipped beside the startup script as the `clarateach-watcher` attribute. */
  watcherScript: string;
  /** PORTAL_ORIGIN: the portal whose pages may frame the seats ('' when none: only the seat's own). */
  portalOrigin: string;
  /**
   * SEAT_DOMAIN and SEAT_DNS_ZONE: the operator's Cloud DNS zone that names each VM
   * (`VM.SEAT_DOMAIN`, an A record the control plane keeps); null: seats are ports of the VM's IP.
   */
  seatDomain: { domain: string; zone: string } | null;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const DEFAULT_STARTUP_SCRIPT = fileURLToPath(
  new URL('../startup/clarateach-startup.sh', import.meta.url),
);
const WATCHER_SCRIPT = 'clarateach-watcher.sh';

function intVar(env: NodeJS.ProcessEnv, name: string, fallback: number, problems: string[]) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    problems.push(`${name} must be a positive integer (got "${raw}")`);
    return fallback;
  }
  return value;
}

/** `scheme://host[:port]` and nothing more: the VMs put it in their pages' CSP as a source. */
function originVar(env: NodeJS.ProcessEnv, name: string, problems: string[]): string {
  const raw = env[name] ?? '';
  if (raw !== '' && !/^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(raw)) {
    problems.push(`${name} must be an origin such as https://portal.example (got "${raw}")`);
    return '';
  }
  return raw;
}

function boolVar(env: NodeJS.ProcessEnv, name: string, problems: string[]): boolean {
  const raw = (env[name] ?? '').toLowerCase();
  if (raw === '' || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1') return true;
  problems.push(`${name} must be true or false (got "${env[name]}")`);
  return false;
}

function listVar(env: NodeJS.ProcessEnv, name: string, fallback: string[]): string[] {
  const items = (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length > 0 ? items : fallback;
}

/**
 * `ID_TOKEN_ISSUERS`: `issuer` or `issuer=certsUrl`, comma-separated. Google's and Identity
 * Platform's keys are known; any other issuer must name where its keys are.
 */
function issuersVar(env: NodeJS.ProcessEnv, project: string, problems: string[]): TokenIssuer[] {
  const items = listVar(env, 'ID_TOKEN_ISSUERS', [
    'https://accounts.google.com',
    `https://securetoken.google.com/${project}`,
  ]);
  const issuers: TokenIssuer[] = [];
  for (const item of items) {
    const at = item.indexOf('=');
    const issuer = at < 0 ? item : item.slice(0, at);
    const certsUrl =
      at >= 0
        ? item.slice(at + 1)
        : issuer === 'https://accounts.google.com'
          ? GOOGLE_CERTS
          : issuer.startsWith('https://securetoken.google.com/')
            ? IDENTITY_PLATFORM_CERTS
            : '';
    if (!/^https?:\/\/\S+$/.test(certsUrl)) {
      problems.push(`ID_TOKEN_ISSUERS: "${issuer}" needs its keys' URL, as issuer=https://…`);
      continue;
    }
    issuers.push({ issuer, certsUrl });
  }
  return issuers;
}

/** A DNS name a VM's name (`ct-…`, up to 38 characters) and a dot still fit in front of. */
const SEAT_DOMAIN_RE =
  /^(?=.{1,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
/** A Cloud DNS managed zone's name. */
const DNS_ZONE_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** `SEAT_DOMAIN` with `SEAT_DNS_ZONE`, both or neither. */
function seatDomainVar(env: NodeJS.ProcessEnv, problems: string[]): Config['seatDomain'] {
  const domain = (env.SEAT_DOMAIN ?? '').trim().toLowerCase().replace(/\.$/, '');
  const zone = (env.SEAT_DNS_ZONE ?? '').trim();
  if (!domain && !zone) return null;
  if (!domain || !zone) {
    problems.push('SEAT_DOMAIN and SEAT_DNS_ZONE go together (the domain and its Cloud DNS zone)');
    return null;
  }
  if (!SEAT_DOMAIN_RE.test(domain)) {
    problems.push(`SEAT_DOMAIN must be a DNS name such as seats.example.edu (got "${domain}")`);
    return null;
  }
  if (!DNS_ZONE_RE.test(zone)) {
    problems.push(`SEAT_DNS_ZONE must be a Cloud DNS zone name such as seats (got "${zone}")`);
    return null;
  }
  return { domain, zone };
}

/** `INSTRUCTORS`: comma-separated emails and `@domain` entries. */
function instructorsVar(env: NodeJS.ProcessEnv, problems: string[]): Instructors {
  const emails = new Set<string>();
  const domains = new Set<string>();
  for (const item of listVar(env, 'INSTRUCTORS', []).map((s) => s.toLowerCase())) {
    if (/^@[a-z0-9.-]+\.[a-z]{2,}$/.test(item)) domains.add(item.slice(1));
    else if (/^[^\s@]{1,64}@[^\s@]{1,189}$/.test(item)) emails.add(item);
    else problems.push(`INSTRUCTORS: "${item}" is neither an email nor @domain`);
  }
  return { emails, domains };
}

/** GCP_ZONES (comma-separated, in order), else GCP_ZONE alone; every zone of one region. */
function zonesVar(env: NodeJS.ProcessEnv, problems: string[]): string[] {
  const raw = env.GCP_ZONES?.trim() ? env.GCP_ZONES : env.GCP_ZONE || 'us-central1-a';
  const zones = [
    ...new Set(
      raw
        .split(',')
        .map((z) => z.trim())
        .filter(Boolean),
    ),
  ];
  const bad = zones.filter((z) => !isZone(z));
  if (zones.length === 0 || bad.length > 0) {
    problems.push(`GCP_ZONES must list zones such as us-central1-a (got "${bad.join(', ')}")`);
    return ['us-central1-a'];
  }
  const regions = new Set(zones.map(regionOf));
  if (regions.size > 1) {
    problems.push(`GCP_ZONES must all be in one region (got ${[...regions].join(', ')})`);
  }
  return zones;
}

/**
 * Reads and checks the whole configuration once, so a bad deploy fails at cold start with one
 * message naming every missing or malformed variable, not on the first workshop.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const project = env.GCP_PROJECT ?? env.GOOGLE_CLOUD_PROJECT ?? '';
  if (!project) problems.push('GCP_PROJECT is not set (the Google Cloud project id)');
  const registry = (env.GCP_REGISTRY ?? '').replace(/\/+$/, '');
  const authMode = (env.AUTH_MODE || 'token') as AuthMode;
  if (authMode !== 'dev' && authMode !== 'token') {
    problems.push(`AUTH_MODE must be "token" or "dev" (got "${env.AUTH_MODE}")`);
  }
  // Cloud Run sets K_SERVICE: a deployed function never trusts an unverified name.
  if (authMode === 'dev' && env.K_SERVICE) {
    problems.push('AUTH_MODE=dev is for the local stack only, not a deployed function');
  }
  // Any Google account can get a token for any audience it names: the audience must be ours.
  if (authMode === 'token' && listVar(env, 'ID_TOKEN_AUDIENCES', []).length === 0) {
    problems.push(
      "ID_TOKEN_AUDIENCES is not set (the portal's OAuth client id, or the project id for Identity Platform)",
    );
  }
  if (authMode === 'token' && listVar(env, 'INSTRUCTORS', []).length === 0) {
    problems.push('INSTRUCTORS is not set (who may run workshops: emails and @domain entries)');
  }
  if (!registry && !(env.WORKSPACE_IMAGE && env.NEKO_IMAGE && env.CADDY_IMAGE)) {
    problems.push(
      'GCP_REGISTRY is not set (the Artifact Registry path of the workshop images), and not every image is given by WORKSPACE_IMAGE, NEKO_IMAGE and CADDY_IMAGE',
    );
  }
  let computeEndpoint: Config['computeEndpoint'];
  if (env.CT_COMPUTE_ENDPOINT) {
    const match = /^([\w.-]+):(\d+)$/.exec(env.CT_COMPUTE_ENDPOINT);
    if (match) computeEndpoint = { host: match[1]!, port: Number(match[2]) };
    else problems.push(`CT_COMPUTE_ENDPOINT must be host:port (got "${env.CT_COMPUTE_ENDPOINT}")`);
  }
  const startupScriptPath = env.CT_STARTUP_SCRIPT ?? DEFAULT_STARTUP_SCRIPT;
  let startupScript = '';
  try {
    startupScript = readFileSync(startupScriptPath, 'utf8');
  } catch {
    problems.push(`the VM startup script cannot be read at ${startupScriptPath}`);
  }
  // The watcher sits beside the startup script, wherever that one is taken from.
  const watcherPath = path.join(path.dirname(startupScriptPath), WATCHER_SCRIPT);
  let watcherScript = '';
  try {
    watcherScript = readFileSync(watcherPath, 'utf8');
  } catch {
    problems.push(`the VM watcher script cannot be read at ${watcherPath}`);
  }
  const zones = zonesVar(env, problems);
  const config: Config = {
    project,
    zones,
    region: regionOf(zones[0]!),
    registry,
    useSpot: boolVar(env, 'GCP_USE_SPOT', problems),
    images: {
      workspace: env.WORKSPACE_IMAGE || `${registry}/workspace:latest`,
      neko: env.NEKO_IMAGE || `${registry}/neko:latest`,
      caddy: env.CADDY_IMAGE || `${registry}/caddy:2`,
    },
    vm: {
      sourceImage: env.VM_SOURCE_IMAGE || 'projects/cos-cloud/global/images/family/cos-stable',
      diskSizeGb: intVar(env, 'VM_DISK_GB', 50, problems),
      serviceAccount: env.VM_SERVICE_ACCOUNT || undefined,
      network: env.VM_NETWORK || undefined,
      subnetwork: env.VM_SUBNETWORK || undefined,
    },
    computeEndpoint,
    acceptReportedHttpPort: boolVar(env, 'ACCEPT_REPORTED_HTTP_PORT', problems),
    // Below the event functions' 540 s timeout, so a slow operation fails the attempt cleanly.
    operationTimeoutMs: intVar(env, 'COMPUTE_OPERATION_TIMEOUT_SECONDS', 300, problems) * 1000,
    provisioningTimeoutMinutes: intVar(env, 'PROVISIONING_TIMEOUT_MINUTES', 15, problems),
    maxDurationMinutes: intVar(env, 'MAX_DURATION_MINUTES', 720, problems),
    joinMissLimit: intVar(env, 'JOIN_MISS_LIMIT', 20, problems),
    instructorLimits: {
      activeWorkshops: intVar(env, 'INSTRUCTOR_MAX_WORKSHOPS', 3, problems),
      activeSeats: intVar(env, 'INSTRUCTOR_MAX_SEATS', 200, problems),
    },
    imageAllowlist: listVar(env, 'IMAGE_ALLOWLIST', []).map((p) => p.replace(/\/*$/, '/')),
    unstartedTtlMinutes: intVar(env, 'UNSTARTED_TTL_MINUTES', 7 * 24 * 60, problems),
    auth: {
      mode: authMode,
      admins: new Set(listVar(env, 'ADMIN_EMAILS', []).map((s) => s.toLowerCase())),
      issuers: issuersVar(env, project, problems),
      audiences: listVar(env, 'ID_TOKEN_AUDIENCES', []),
      instructors: instructorsVar(env, problems),
    },
    startupScript,
    watcherScript,
    portalOrigin: originVar(env, 'PORTAL_ORIGIN', problems),
    seatDomain: seatDomainVar(env, problems),
  };
  if (problems.length > 0) {
    throw new ConfigError(`configuration is incomplete:\n  - ${problems.join('\n  - ')}`);
  }
  return config;
}

/** A short image name (`python:3.12`) lives in the workshop registry; a path is taken as given. */
export function resolveImage(config: Config, image: string | undefined): string {
  if (!image) return config.images.workspace;
  return image.includes('/') ? image : `${config.registry}/${image}`;
}
