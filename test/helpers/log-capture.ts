export interface CapturedOutput {
  /** The structured log lines (JSON), kept instead of printed. */
  structured: string[];
  /** Everything written to each stream, structured or not: console lines, stack traces too. */
  streams: { stdout: string; stderr: string };
}

/**
 * Everything this process writes to stdout and stderr from now on (the functions run in the test
 * process), so a test can look for secrets in all of it. Other output is still printed.
 */
export function captureOutput(): CapturedOutput {
  process.env.CT_LOG_LEVEL = 'info';
  const captured: CapturedOutput = { structured: [], streams: { stdout: '', stderr: '' } };
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name];
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      captured.streams[name] += text;
      if (text.startsWith('{"severity"')) {
        captured.structured.push(...text.split('\n').filter(Boolean));
        return true;
      }
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
  return captured;
}

/** The secrets (by a short label) that appear anywhere in the output. */
export function leakedSecrets(output: CapturedOutput, secrets: ReadonlyMap<string, string>) {
  const all = [output.streams.stdout, output.streams.stderr];
  return [...secrets]
    .filter(([, secret]) => all.some((text) => text.includes(secret)))
    .map(([label]) => label);
}
