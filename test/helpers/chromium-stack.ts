import type { ExecutionContext, TestFn } from 'ava';
import { prepareMachine } from '../../local/machine.ts';
import { launchChromium, type SeatBrowser } from '../seat/browser.ts';
import { eventually, startTestStack, type TestStack } from './stack.ts';
import { docker } from './vm.ts';

/**
 * End-to-end tests as learners see them: the whole local stack booting real VMs on Docker, and
 * headless Chromium on the pages it hands out.
 */
export interface ChromiumStack {
  readonly stack: TestStack;
  readonly browser: SeatBrowser;
}

/** Registers the file's hooks (machine readied, stack with booting VMs, Chromium) and their undoing. */
export function useChromiumStack(test: TestFn): ChromiumStack {
  let stack: TestStack | undefined;
  let browser: SeatBrowser | undefined;
  test.before(async () => {
    await prepareMachine({ browser: true, say: () => undefined });
    stack = await startTestStack({ boot: true });
    browser = await launchChromium();
  });
  test.after.always(async () => {
    await browser?.close();
    await stack?.close();
  });
  return {
    get stack() {
      return stack!;
    },
    get browser() {
      return browser!;
    },
  };
}

/** How long a class may take to boot, or to be torn down, on a machine shared with other runs. */
const CLASS_MS = 300_000;

/**
 * Creates and starts a class, waits until it is ready (failing with its error otherwise), and
 * makes sure it ends with the test. Returns the created class and `end`, which ends it and
 * fails when an instance or a container of it is left (it also runs at teardown, after the test
 * itself, so it throws rather than asserts).
 */
export async function readyClass(
  t: ExecutionContext,
  stack: TestStack,
  body: Record<string, unknown>,
): Promise<{ id: string; joinCode: string; end(): Promise<void> }> {
  const created = await stack.api('POST', '/workshops', body);
  t.is(created.status, 201);
  const { id, joinCode } = created.body as { id: string; joinCode: string };
  await stack.api('POST', `/workshops/${id}/start`);
  let ended: Promise<void> | undefined;
  const end = () =>
    (ended ??= (async () => {
      await stack.api('DELETE', `/workshops/${id}`);
      await eventually(
        'the class ended',
        async () => (await stack.workshop(id)).status === 'ended',
        CLASS_MS,
      );
      const left = stack.instancesOf(id).map((i) => i.name);
      if (left.length) throw new Error(`instances left after the class: ${left.join(', ')}`);
      const booted = stack.local.booted.map((vm) => vm.namePrefix);
      await eventually('no container of the class left', async () => {
        const names = await docker('ps', '-a', '--format', '{{.Names}}');
        return !names.split('\n').some((n) => booted.some((prefix) => n.startsWith(prefix)));
      });
    })());
  t.teardown(end);
  const ready = await eventually(
    'the class ready or failed',
    async () => {
      const w = await stack.workshop(id);
      return ['ready', 'failed'].includes(w.status) ? w : undefined;
    },
    CLASS_MS,
  );
  t.is(ready.status, 'ready', JSON.stringify(ready.error));
  return { id, joinCode, end };
}
