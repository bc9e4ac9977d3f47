/**
 * Every structured log line this process writes from now on (the functions run in the test
 * process), kept instead of printed, so a test can look for secrets in them.
 */
export function captureLogs(): string[] {
  process.env.CT_LOG_LEVEL = 'info';
  const lines: string[] = [];
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      const text = chunk.toString();
      if (text.startsWith('{"severity"')) {
        lines.push(...text.split('\n').filter(Boolean));
        return true;
      }
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
  return lines;
}

/** The secrets (by a short label) that appear somewhere in the lines. */
export function leakedSecrets(lines: readonly string[], secrets: ReadonlyMap<string, string>) {
  const all = lines.join('\n');
  return [...secrets].filter(([, secret]) => all.includes(secret)).map(([label]) => label);
}
