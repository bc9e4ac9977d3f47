/**
 * Structured logs in the shape Cloud Logging reads from stdout: one JSON object per line with
 * `severity` and `message`. Callers pass ids and codes as fields, never tokens or keys.
 */
type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
export type LogFields = Record<string, unknown> & { workshopId?: string };

/** One log line; an Error field keeps its name and message, never its stack or cause. */
export function formatLog(severity: Severity, message: string, fields: LogFields = {}): string {
  const entry = { severity, message, ...fields, time: new Date().toISOString() };
  return JSON.stringify(entry, (_key, value: unknown) =>
    value instanceof Error ? { name: value.name, message: value.message } : value,
  );
}

function write(severity: Severity, message: string, fields: LogFields = {}): void {
  if (process.env.CT_LOG_LEVEL === 'silent') return;
  const line = formatLog(severity, message, fields);
  (severity === 'ERROR' || severity === 'WARNING' ? process.stderr : process.stdout).write(
    `${line}\n`,
  );
}

export const log = {
  debug: (message: string, fields?: LogFields) => write('DEBUG', message, fields),
  info: (message: string, fields?: LogFields) => write('INFO', message, fields),
  warn: (message: string, fields?: LogFields) => write('WARNING', message, fields),
  error: (message: string, fields?: LogFields) => write('ERROR', message, fields),
};
