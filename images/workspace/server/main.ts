import { parseSeatConfig } from './config.ts';
import { jsonLogger } from './log.ts';
import { actAsLearner } from './privileges.ts';
import { startSeatServer } from './seat-server.ts';

/** `node /opt/seat/seat-server.mjs`: both seat servers, configured by the environment. */
const log = jsonLogger();
// Node opens its inspector (a debugger anyone in the container may connect to) on SIGUSR1; a
// listener of its own takes the signal instead (Debian's Node 18 has no --disable-sigusr1).
process.on('SIGUSR1', () => log('WARNING', 'SIGUSR1 ignored: the inspector stays closed'));
try {
  const config = parseSeatConfig(process.env);
  if (config.user) actAsLearner(config.user);
  const seat = await startSeatServer({ ...config, log });
  const shutdown = (signal: string): void => {
    log('INFO', 'stopping', { signal });
    void seat.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
} catch (err) {
  log('ERROR', 'seat server failed to start', { error: String(err) });
  process.exit(1);
}
