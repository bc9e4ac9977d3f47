import { parseSeatConfig } from './config.ts';
import { jsonLogger } from './log.ts';
import { startSeatServer } from './seat-server.ts';

/** `node /opt/seat/seat-server.mjs`: both seat servers, configured by the environment. */
const log = jsonLogger();
try {
  const config = parseSeatConfig(process.env);
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
