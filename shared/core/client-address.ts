import { isIP } from 'node:net';

/**
 * Whom the join limits count. An IPv6 client counts by its /64: one home, office or phone network
 * gets a whole /64 and picks host bits at will, so a single address would be no limit at all. An
 * IPv4-mapped IPv6 address counts as its IPv4 address; anything else as given.
 */
export function addressKey(address: string): string {
  const raw = address.trim().toLowerCase().replace(/%.*$/, '');
  if (isIP(raw) !== 6) return raw;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(raw);
  if (mapped) return mapped[1]!;
  const [head, tail] = raw.includes('::') ? raw.split('::') : [raw, undefined];
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  // An embedded IPv4 tail (`64:ff9b::1.2.3.4`) takes the room of two groups.
  const width = (part: string[]) => part.length + (part.at(-1)?.includes('.') ? 1 : 0);
  const front = groups(head);
  const back = groups(tail);
  const all =
    tail === undefined
      ? front
      : [...front, ...Array<string>(8 - width(front) - width(back)).fill('0'), ...back];
  const prefix = all.slice(0, 4).map((g) => parseInt(g, 16).toString(16));
  return `${prefix.join(':')}::/64`;
}
