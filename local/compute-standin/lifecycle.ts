/**
 * The instance state machine: PROVISIONING → STAGING → RUNNING (booting the guest), then STOPPING
 * and gone on delete. Each step waits `stepMs`; the instance's operation is DONE at the end.
 */
import { finish } from './operations.ts';
import { key, type InstanceState, type OperationState, type StandinState } from './state.ts';
import type { BootableInstance, InstanceRecord } from './types.ts';

export function setStatus(record: InstanceRecord, status: string): void {
  if (record.status === status) return;
  record.status = status;
  record.statusHistory.push(status);
}

/** Calls onBoot for a RUNNING instance; a rejection is kept as its bootError. */
function boot(standin: StandinState, instance: InstanceState): void {
  const r = instance.record;
  const onBoot = standin.settings.onBoot;
  if (!onBoot || standin.stopping) return;
  r.booted = true;
  const bootable: BootableInstance = {
    name: r.name,
    zone: r.zone,
    project: r.project,
    metadata: { ...r.metadata },
    labels: { ...r.labels },
    externalIp: r.externalIp,
    internalIp: r.internalIp,
  };
  instance.boot = onBoot(bootable).then(
    (handle) => handle,
    (err: unknown) => {
      r.bootError = err instanceof Error ? err.message : String(err);
      return undefined;
    },
  );
}

/** Cancels the instance's pending steps and stops its guest (waiting for a boot in flight). */
export async function shutDown(instance: InstanceState): Promise<void> {
  for (const timer of instance.timers) clearTimeout(timer);
  instance.timers.clear();
  const handle = await instance.boot;
  instance.boot = undefined;
  if (handle) {
    try {
      await handle.stop();
    } catch (err) {
      instance.record.bootError = `stop failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
}

/** PROVISIONING → STAGING → RUNNING, then boots the guest and finishes the insert operation. */
export function provision(standin: StandinState, instance: InstanceState): void {
  const { record, insertOp: op } = instance;
  const stepMs = standin.settings.stepMs;
  standin.later(
    stepMs,
    () => {
      setStatus(record, 'STAGING');
      op.progress = 50;
      standin.later(
        stepMs,
        () => {
          setStatus(record, 'RUNNING');
          // The guest boots once the instance runs; the operation is DONE at that point too.
          boot(standin, instance);
          finish(op);
        },
        instance.timers,
      );
    },
    instance.timers,
  );
}

/**
 * Deletes a STOPPING instance: ends an insert still in progress, shuts the guest down after a step
 * and forgets the instance, then finishes `op`. A second delete joins the first one's deletion.
 */
export function deprovision(standin: StandinState, instance: InstanceState, op: OperationState) {
  // An insert still in progress ends here (unless it was made never to finish).
  if (instance.insertOp.status !== 'DONE' && !instance.neverDone) {
    for (const timer of instance.timers) clearTimeout(timer);
    instance.timers.clear();
    finish(instance.insertOp);
  }
  const { project, zone, name } = instance.record;
  const k = key(project, zone, name);
  instance.deletion ??= (async () => {
    await new Promise((resolve) => setTimeout(resolve, standin.settings.stepMs));
    await shutDown(instance);
    if (standin.instances.get(k) === instance) standin.instances.delete(k);
  })();
  void instance.deletion.then(() => finish(op));
}

/** Stops every instance (answering blocked waits first) and forgets them all. */
export async function shutDownAll(standin: StandinState): Promise<void> {
  standin.stopping = true;
  for (const timer of standin.looseTimers) clearTimeout(timer);
  standin.looseTimers.clear();
  // Answer every blocked wait, then stop every booted instance (waiting for boots in flight).
  for (const op of standin.operations.values()) {
    for (const wake of [...op.waiters]) wake();
  }
  const instances = [...standin.instances.values()];
  await Promise.allSettled(instances.map((s) => s.deletion ?? shutDown(s)));
  standin.instances.clear();
}
