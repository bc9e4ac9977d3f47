/**
 * The last output of a shell, kept raw so a viewer that comes back sees what it missed (the
 * approach of coder's reconnecting pty). A replay starts at a line start, which is also never
 * inside a UTF-8 sequence since a newline byte cannot be part of one.
 */
export const REPLAY_BYTES = 64 * 1024;

export class ReplayBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private truncated = false;

  constructor(private readonly limit = REPLAY_BYTES) {}

  append(data: Buffer): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.size += data.length;
    // Keep up to twice the limit between compactions, so appends stay cheap.
    if (this.size > 2 * this.limit) {
      const all = Buffer.concat(this.chunks);
      this.chunks = [all.subarray(all.length - this.limit)];
      this.size = this.limit;
      this.truncated = true;
    }
  }

  snapshot(): Buffer {
    const all = Buffer.concat(this.chunks);
    const tail = all.length > this.limit ? all.subarray(all.length - this.limit) : all;
    return replayStart(tail, this.truncated || all.length > this.limit);
  }
}

/**
 * Pure: where a cut buffer may start. After a cut, skip to just after the first newline; with
 * no newline at all, skip only the UTF-8 continuation bytes (10xxxxxx) of a split character.
 */
export function replayStart(buf: Buffer, cut: boolean): Buffer {
  if (!cut) return buf;
  const nl = buf.indexOf(0x0a);
  if (nl >= 0) return buf.subarray(nl + 1);
  let i = 0;
  while (i < buf.length && ((buf[i] as number) & 0xc0) === 0x80) i++;
  return buf.subarray(i);
}
