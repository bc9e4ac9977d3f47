import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type AuthMode = 'dev' | 'header';

export interface Config {
  project: string;
  zone: string;
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
  provisioningTimeoutMinutes: number;
  maxDurationMinutes: number;
  /** Unknown join codes one client address may try per 10 minutes. */
  joinMissLimit: number;
  /** Workshops created but never started are cleaned up after this long. */
  unstartedTtlMinutes: number;
  auth: { mode: AuthMode; admins: ReadonlySet<string> };
  startupScript: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const DEFAULT_STARTUP_SCRIPT = fileURLToPath(
  new URL('../startup/clarateach-startup.sh', import.meta.url),
);

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

function boolVar(env: NodeJS.ProcessEnv, name: string, problems: string[]): boolean {
  const raw = (env[name] ?? '').toLowerCase();
  if (raw === '' || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1') return true;
  problems.push(`${name} must be true or false (got "${env[name]}")`);
  return false;
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
  const authMode = (env.AUTH_MODE ?? 'header') as AuthMode;
  if (authMode !== 'dev' && authMode !== 'header') {
    problems.push(`AUTH_MODE must be "dev" or "header" (got "${env.AUTH_MODE}")`);
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
  const config: Config = {
    project,
    zone: env.GCP_ZONE || 'us-central1-a',
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
    // Below the event functions' 540 s timeout, so a slow operation fails the attempt cleanly.
    operationTimeoutMs: intVar(env, 'COMPUTE_OPERATION_TIMEOUT_SECONDS', 300, problems) * 1000,
    provisioningTimeoutMinutes: intVar(env, 'PROVISIONING_TIMEOUT_MINUTES', 15, problems),
    maxDurationMinutes: intVar(env, 'MAX_DURATION_MINUTES', 720, problems),
    joinMissLimit: intVar(env, 'JOIN_MISS_LIMIT', 20, problems),
    unstartedTtlMinutes: intVar(env, 'UNSTARTED_TTL_MINUTES', 7 * 24 * 60, problems),
    auth: {
      mode: authMode,
      admins: new Set(
        (env.ADMIN_EMAILS ?? '')
          .split(',')
          .map((s) => s.trim().toLowerCase())
          .filter(Boolean),
      ),
    },
    startupScript,
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
