/**
 * Runs deploy.sh against recording stand-ins for `gcloud` (fake-gcloud.sh) and `curl`, and reads
 * back what it called. No cloud is involved.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** The script under test; CT_DEPLOY_SCRIPT points the tests at another copy (e.g. a scratch one). */
export const DEPLOY_SCRIPT = process.env.CT_DEPLOY_SCRIPT || join(REPO, 'deploy.sh');

export const PROJECT = 'p';
export const PROJECT_NUMBER = '123456789012'; // what fake-gcloud.sh answers
export const FN_SA = `clarateach-functions@${PROJECT}.iam.gserviceaccount.com`;
export const VM_SA = `clarateach-vm@${PROJECT}.iam.gserviceaccount.com`;
export const PORTAL_SA = `portal@${PROJECT}.iam.gserviceaccount.com`;
export const PUBSUB_AGENT = `service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com`;
/** Holds commas on purpose: they must survive gcloud's list parsing. */
export const ADMIN_EMAILS = 'ops@school.example,lead@school.example';

export interface DeployRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** one readable line per gcloud or curl call */
  lines: string[];
  /** the exact arguments of every gcloud call, in order */
  calls: string[][];
}

/** Settings of the caller's shell that would change what deploy.sh does; never passed on. */
const SCRUBBED =
  /^(GCP_|NETWORK$|ADMIN_EMAILS$|PORTAL_SERVICE_ACCOUNT$|IAM_RETRY_SECONDS$|FAKE_|CLOUDSDK_)/;

function readCalls(file: string): string[][] {
  let parts: string[];
  try {
    parts = readFileSync(file, 'utf8').split('\0');
  } catch {
    return [];
  }
  const calls: string[][] = [];
  let i = 0;
  while (i < parts.length - 1) {
    const count = Number(parts[i++]);
    calls.push(parts.slice(i, i + count));
    i += count;
  }
  return calls;
}

/** Runs deploy.sh once with the stand-ins first on PATH; `env` adds or overrides settings. */
export async function runDeploy(env: Record<string, string> = {}): Promise<DeployRun> {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-'));
  try {
    copyFileSync(join(REPO, 'test/deploy/fake-gcloud.sh'), join(dir, 'gcloud'));
    writeFileSync(
      join(dir, 'curl'),
      '#!/bin/bash\necho "curl $*" >>"$FAKE_LOG_DIR/calls.log"\n' +
        'case "$*" in *@-*) cat >/dev/null ;; esac\n' +
        `echo '{"name":"projects/${PROJECT}/rulesets/r1"}'\n`,
    );
    chmodSync(join(dir, 'gcloud'), 0o755);
    chmodSync(join(dir, 'curl'), 0o755);
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !SCRUBBED.test(key)),
    );
    const child = spawn('bash', [DEPLOY_SCRIPT], {
      env: {
        ...base,
        PATH: `${dir}:${process.env.PATH}`,
        FAKE_LOG_DIR: dir,
        GCP_PROJECT: PROJECT,
        PORTAL_SERVICE_ACCOUNT: PORTAL_SA,
        ADMIN_EMAILS,
        IAM_RETRY_SECONDS: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    let lines: string[] = [];
    try {
      lines = readFileSync(join(dir, 'calls.log'), 'utf8').split('\n').filter(Boolean);
    } catch {
      // deploy.sh stopped before its first call
    }
    return { code, stdout, stderr, lines, calls: readCalls(join(dir, 'argv.bin')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The words of a call that are not flags: command path and positional arguments. */
export function words(call: readonly string[]): string {
  return call.filter((a) => !a.startsWith('-')).join(' ');
}

/** Every value given to --NAME (`--NAME=V`); a bare `--NAME` counts as the value ''. */
export function flag(call: readonly string[], name: string): string[] {
  return call
    .filter((a) => a === `--${name}` || a.startsWith(`--${name}=`))
    .map((a) => (a === `--${name}` ? '' : a.slice(name.length + 3)));
}

/** The calls whose non-flag words start with `prefix`. */
export function callsOf(calls: readonly string[][], prefix: string): string[][] {
  return calls.filter((c) => `${words(c)} `.startsWith(`${prefix} `));
}
