/**
 * Boot-to-ready on real Docker: a 20-seat VM's startup script (the one in startup/, as shipped)
 * from its start to its `vm.ready` report, images present, against the same script starting the
 * same seats one after another (CT_PARALLEL=1, the seed's loop). Every container, network, volume
 * and firewall rule a run makes is removed after it.
 */
import { randomBytes } from 'node:crypto';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { ensureLocalImages } from '../local/images.ts';
import { prepareMachine } from '../local/machine.ts';
import { bootInstance } from '../local/vm-runner.ts';
import { ms, times, type Row } from './stats.ts';

const SEATS = 20;
const TARGET_SPEEDUP = 3;
const READY_WITHIN_MS = 240_000;

const token = () => randomBytes(24).toString('base64url');

export async function bootToReady(
  env: { projectId: string; pubsubHost: string },
  cleanups: Array<() => Promise<void>>,
): Promise<Row[]> {
  const say = () => undefined;
  await prepareMachine({ say });
  const images = await ensureLocalImages(say);
  const pubsub = new PubSub({ projectId: env.projectId });
  cleanups.push(() => pubsub.close());
  const [topic] = await pubsub.topic('bench.vm.ready').get({ autoCreate: true });
  const [subscription] = await topic.createSubscription(`bench-${token().slice(0, 8)}`);
  cleanups.push(async () => {
    await subscription.close();
    await subscription.delete().catch(() => undefined);
  });
  const reports = new Map<string, { state: string; seatsReady?: number; error?: string }>();
  let streamError: Error | undefined;
  subscription.on('error', (error: Error) => (streamError = error));
  subscription.on('message', (m: Message) => {
    m.ack();
    const report = JSON.parse(m.data.toString()) as { vmName: string; state: string };
    reports.set(report.vmName, report);
  });

  /** Boots a fresh VM, returns how long until it reported ready, and removes all of it. */
  const bootOnce = async (scriptEnv: Record<string, string>): Promise<number> => {
    const workshopId = `bench${randomBytes(4).toString('hex')}`;
    const vmName = `ct-${workshopId}-vm-0`;
    const seatTokens = Array.from({ length: SEATS }, (_, i) => `${i + 1}:${token()}`);
    const start = performance.now();
    const vm = await bootInstance(
      {
        name: vmName,
        zone: 'local-a',
        project: env.projectId,
        metadata: {
          'workshop-id': workshopId,
          'vm-name': vmName,
          'seat-first': '1',
          'seat-count': String(SEATS),
          'workspace-image': images.workspace,
          'neko-image': images.browser,
          'caddy-image': images.caddy,
          registry: '',
          'ready-topic': topic.name,
          'ready-token': token(),
          'seat-tokens': seatTokens.join(' '),
        },
        labels: { app: 'clarateach', workshop: workshopId },
        externalIp: '203.0.113.10',
        internalIp: '10.128.0.10',
      },
      { pubsubEmulatorHost: env.pubsubHost, scriptEnv },
    );
    const stop = () => vm.stop();
    cleanups.push(stop);
    try {
      const deadline = Date.now() + READY_WITHIN_MS;
      while (!reports.has(vmName)) {
        if (streamError) throw streamError;
        if (Date.now() > deadline) throw new Error(`${vmName} did not report within 240 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const report = reports.get(vmName)!;
      if (report.state !== 'ready' || report.seatsReady !== SEATS) {
        throw new Error(`${vmName} reported ${report.state}: ${report.error?.slice(-300) ?? ''}`);
      }
      return performance.now() - start;
    } finally {
      cleanups.splice(cleanups.indexOf(stop), 1);
      await vm.stop();
    }
  };

  const shipped = await bootOnce({});
  const serial = await bootOnce({ CT_PARALLEL: '1' });
  const speedup = serial / shipped;
  return [
    {
      what: `boot-to-ready on real Docker: ${SEATS} seats (40 containers + Caddy), images present`,
      measured: `${ms(shipped)} (startup script as shipped), ${times(speedup)} faster`,
      baseline: `${ms(serial)} (same script, CT_PARALLEL=1: one seat after another)`,
      target: `≥ ${TARGET_SPEEDUP}× faster`,
      verdict: speedup >= TARGET_SPEEDUP ? 'met' : 'missed',
    },
  ];
}
