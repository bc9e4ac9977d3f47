// The seed of a fuzz run, and its PRNG: a failure replays exactly. The seed is printed,
// CLARATEACH_FUZZ_SEED=<hex> replays it, and in CI (CI=true) every run takes a new one.
import { randomInt } from 'node:crypto';
import { inCI } from './prerequisites.ts';

/** The run's seed (`fallback` outside CI when none is given), printed under `name`. */
export function fuzzSeed(name: string, fallback: number): number {
  const given = process.env.CLARATEACH_FUZZ_SEED;
  if (given && !/^[0-9a-f]{1,8}$/i.test(given)) {
    throw new Error(`CLARATEACH_FUZZ_SEED must be hex: ${given}`);
  }
  const seed = given ? parseInt(given, 16) : inCI ? randomInt(2 ** 32) : fallback;
  const hex = seed.toString(16);
  console.error(`${name}: seed ${hex} (replay with CLARATEACH_FUZZ_SEED=${hex})`);
  return seed;
}

/** mulberry32: a tiny, fast, well-mixed 32-bit PRNG; the same seed gives the same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
