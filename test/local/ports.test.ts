import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { pickPortBlock, releasePortBlock } from '../../local/ports.ts';

const CLAIMS = path.join(os.tmpdir(), 'clarateach-port-blocks');

test('a port block is claimed for this process until it is released', async (t) => {
  const { portBase } = await pickPortBlock(20);
  const file = path.join(CLAIMS, String(portBase));
  t.is(readFileSync(file, 'utf8'), String(process.pid), 'another process sees it is taken');
  releasePortBlock(portBase);
  t.false(existsSync(file));
});
