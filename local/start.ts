import { missingPrerequisites } from './check-prerequisites.ts';
import { startLocalStack } from './stack.ts';

/** `npm start`: the whole system on this machine, until Ctrl-C. */
const missing = missingPrerequisites();
if (missing.length > 0) {
  for (const line of missing) console.error(`cannot start: ${line}`);
  process.exit(1);
}
const port = Number(process.env.PORT ?? 8080);
const stack = await startLocalStack({
  projectId: process.env.GCP_PROJECT ?? 'clarateach-local',
  port,
  boot: true,
  sweepEveryMs: 60_000,
  say: (line) => console.error(line),
}).catch((error: unknown) => {
  const busy = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
  console.error(
    busy
      ? `cannot start: port ${port} is in use (choose another with PORT=…)`
      : `cannot start: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(1);
});
// Where the emulators are, for pointing other tools (or the gcloud CLI) at them.
console.error(
  `emulators: FIRESTORE_EMULATOR_HOST=${stack.firestoreHost} PUBSUB_EMULATOR_HOST=${stack.pubsubHost}`,
);
console.log(`ready: ${stack.url}`);

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.error(`${signal}: stopping every VM, function and emulator…`);
  stack.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
