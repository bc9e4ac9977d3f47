/**
 * Runs deploy.sh against recording, stateful stand-ins for `gcloud` (fake-gcloud.sh), `curl`
 * (fake-curl.sh) and `npm`, and reads back what it called. No cloud is involved.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../local/commands.ts';

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
export const AUDIENCE = '123-portal.apps.googleusercontent.com';
export const INSTRUCTORS = '@school.example,guest@gmail.com';

export interface DeployRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** one readable line per gcloud or curl call */
  lines: string[];
  /** the exact arguments of every gcloud call, in order */
  calls: string[][];
  /** the first line of each header file curl was given */
  curlHeaderFiles: string[];
  /** the Cloud Build configuration of each `builds submit`, as given */
  buildConfigs: string[];
}

export interface RunOptions {
  /** deploy.sh's arguments */
  args?: string[];
  /** the stand-ins' state (newState()); by default a fresh one for this run alone */
  state?: string;
}

/** Settings of the caller's shell that would change what deploy.sh does; never passed on. */
const SCRUBBED =
  /^(GCP_|NETWORK$|SUBNETWORK$|ADMIN_EMAILS$|ID_TOKEN_\w+$|INSTRUCTORS$|PORTAL_SERVICE_ACCOUNT$|\w+_RETRY_SECONDS$|FAKE_|CLOUDSDK_)/;

/**
 * A scratch copy of the checkout (its tracked and new files) for deploy.sh to run in, made once per
 * test process, so that nothing a run does can touch the checkout. Where the workspace image's
 * build context is not in the checkout yet, a placeholder Dockerfile stands in.
 */
let checkout: string | undefined;
function scratchCheckout(): string {
  if (checkout) return checkout;
  const dir = mkdtempSync(join(tmpdir(), 'deploy-checkout-'));
  const files = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    {
      cwd: REPO,
      encoding: 'utf8',
    },
  )
    .split('\0')
    .filter((f) => f && existsSync(join(REPO, f)));
  for (const file of files) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(join(REPO, file), join(dir, file));
  }
  copyFileSync(DEPLOY_SCRIPT, join(dir, 'deploy.sh'));
  const dockerfile = join(dir, 'images/workspace/Dockerfile');
  if (!existsSync(dockerfile)) {
    mkdirSync(dirname(dockerfile), { recursive: true });
    writeFileSync(dockerfile, 'ARG BASE=debian:bookworm-slim\nFROM $BASE\n');
  }
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  checkout = dir;
  return dir;
}

/** A place for the stand-ins' state, to hand to several runs; removed when the process exits. */
export function newState(): string {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-state-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Makes the recorded resource KEY look as if it had been given `flagLine` (e.g. by hand). */
export function tamper(state: string, key: string, flagLine: string): void {
  writeFileSync(join(state, 'res', key), `${flagLine}\n`, { flag: 'a' });
}

/** What the stand-ins hold, as file name → content (resources are `res/KEY`, content ignored). */
export function stateOf(state: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['iam', 'enabled', 'ttls', 'indexes']) {
    const file = join(state, name);
    out[name] = existsSync(file) ? readFileSync(file, 'utf8') : '';
  }
  const res = join(state, 'res');
  for (const key of existsSync(res) ? readdirSync(res) : []) out[`res/${key}`] = '';
  return out;
}

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

/**
 * Runs deploy.sh once with the stand-ins first on PATH; `env` adds or overrides settings. What
 * it recorded is read back; the state stays for the next run when `options.state` is given.
 */
export async function runDeploy(
  env: Record<string, string> = {},
  options: RunOptions = {},
): Promise<DeployRun> {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-'));
  try {
    copyFileSync(join(REPO, 'test/deploy/fake-gcloud.sh'), join(dir, 'gcloud'));
    copyFileSync(join(REPO, 'test/deploy/fake-curl.sh'), join(dir, 'curl'));
    writeFileSync(join(dir, 'npm'), '#!/bin/bash\necho "npm $*" >>"$FAKE_LOG_DIR/calls.log"\n');
    for (const tool of ['gcloud', 'curl', 'npm']) chmodSync(join(dir, tool), 0o755);
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !SCRUBBED.test(key)),
    );
    const { code, stdout, stderr } = await runCommand(
      'bash',
      [join(scratchCheckout(), 'deploy.sh'), ...(options.args ?? [])],
      {
        ...base,
        PATH: `${dir}:${process.env.PATH}`,
        FAKE_LOG_DIR: dir,
        FAKE_STATE_DIR: options.state ?? join(dir, 'state'),
        GCP_PROJECT: PROJECT,
        PORTAL_SERVICE_ACCOUNT: PORTAL_SA,
        ADMIN_EMAILS,
        ID_TOKEN_AUDIENCES: AUDIENCE,
        INSTRUCTORS,
        IAM_RETRY_SECONDS: '0',
        DEPLOY_RETRY_SECONDS: '0',
        ...env,
      },
    );
    let lines: string[] = [];
    try {
      lines = readFileSync(join(dir, 'calls.log'), 'utf8').split('\n').filter(Boolean);
    } catch {
      // deploy.sh stopped before its first call
    }
    let curlHeaderFiles: string[] = [];
    try {
      curlHeaderFiles = readFileSync(join(dir, 'curl-headers.log'), 'utf8').split('\n');
      curlHeaderFiles.pop();
    } catch {
      // no curl call gave one
    }
    let buildConfigs: string[] = [];
    try {
      buildConfigs = readFileSync(join(dir, 'build-configs.log'), 'utf8').split('\n');
      buildConfigs.pop();
    } catch {
      // nothing was built
    }
    return {
      code,
      buildConfigs,
      stdout,
      stderr,
      lines,
      calls: readCalls(join(dir, 'argv.bin')),
      curlHeaderFiles,
    };
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
