/**
 * One JSON line per event. Callers pass only what is safe to keep: never a token, a query
 * string or file content.
 */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
export type Logger = (
  severity: Severity,
  message: string,
  fields?: Record<string, unknown>,
) => void;

export function jsonLogger(write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  return (severity, message, fields = {}) => {
    write(`${JSON.stringify({ severity, message, component: 'seat', ...fields })}\n`);
  };
}

export const silentLogger: Logger = () => {};
