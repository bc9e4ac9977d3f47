import { createHash, randomInt } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Join codes avoid characters people confuse when read aloud or off a projector: 0/O, 1/I/L. */
export const JOIN_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
/** 8 characters of a 31-letter alphabet: 39.6 bits, well past the 30 bits guessing must face. */
export const JOIN_CODE_LENGTH = 8;

function randomString(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** Workshop ids are lowercase base32 and start with a letter, so they are safe in DNS names and labels. */
export function newWorkshopId(): string {
  return randomString(BASE32.slice(0, 26), 1) + randomString(BASE32, 15);
}

export const WORKSHOP_ID_PATTERN = '^[a-z][a-z2-7]{9,31}$';
const workshopIdRe = new RegExp(WORKSHOP_ID_PATTERN);

export function isWorkshopId(value: string): boolean {
  return workshopIdRe.test(value);
}

export function newJoinCode(): string {
  return randomString(JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH);
}

/** Accepts what a learner types: any case, spaces or dashes between groups. */
export function normalizeJoinCode(input: string): string | null {
  const code = input.replace(/[\s-]/g, '').toUpperCase();
  if (code.length !== JOIN_CODE_LENGTH) return null;
  for (const ch of code) if (!JOIN_CODE_ALPHABET.includes(ch)) return null;
  return code;
}

/** Instance names are deterministic, so a redelivered start event finds the VM it already made. */
export function instanceName(workshopId: string, index: number): string {
  return `ct-${workshopId}-${index}`;
}

/**
 * A VM's hostname under the operator's seat domain: its instance name is a DNS label of its own
 * (lowercase, digits, dashes, at most 38 characters), so no two VMs ever share one.
 */
export function vmHostname(vmName: string, seatDomain: string): string {
  return `${vmName}.${seatDomain}`;
}

/** The VM a hostname under `seatDomain` names, or null when it names none of ours. */
export function vmOfHostname(host: string, seatDomain: string): string | null {
  const suffix = `.${seatDomain}`;
  if (!host.endsWith(suffix)) return null;
  const name = host.slice(0, -suffix.length);
  return /^ct-[a-z][a-z2-7]{9,31}-\d{1,3}$/.test(name) ? name : null;
}

/**
 * A UUID (v4 layout) derived from its inputs: the Compute API answers a repeated insert with the
 * same requestId with the original operation instead of a second VM.
 */
export function deterministicUuid(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return [
    hex.slice(0, 8),
    hex.slice(8, 12),
    `4${hex.slice(13, 16)}`,
    `${variant}${hex.slice(17, 20)}`,
    hex.slice(20, 32),
  ].join('-');
}
