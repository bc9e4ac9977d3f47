import test from 'ava';
import {
  deterministicUuid,
  instanceName,
  isWorkshopId,
  JOIN_CODE_ALPHABET,
  JOIN_CODE_LENGTH,
  newJoinCode,
  newWorkshopId,
  normalizeJoinCode,
  vmHostname,
  vmOfHostname,
} from '../../shared/core/ids.ts';

test('workshop ids are DNS-safe lowercase base32 of at least 10 characters', (t) => {
  const ids = new Set(Array.from({ length: 500 }, newWorkshopId));
  t.is(ids.size, 500);
  for (const id of ids) {
    t.regex(id, /^[a-z][a-z2-7]{9,}$/);
    t.true(isWorkshopId(id));
  }
  t.false(isWorkshopId('UPPER12345'));
  t.false(isWorkshopId('short'));
  t.false(isWorkshopId('../../etc/x'));
});

test('instance names are valid GCE names, deterministic per workshop and index', (t) => {
  const id = newWorkshopId();
  const name = instanceName(id, 3);
  t.is(name, `ct-${id}-3`);
  t.is(instanceName(id, 3), name);
  t.regex(name, /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
  t.true(instanceName(`${id}${'a'.repeat(16)}`, 9).length <= 63);
});

test('a VM is named under the seat domain by its instance name, and only ours are read back', (t) => {
  const id = newWorkshopId();
  const host = vmHostname(instanceName(id, 2), 'seats.example.edu');
  t.is(host, `ct-${id}-2.seats.example.edu`);
  t.is(vmOfHostname(host, 'seats.example.edu'), `ct-${id}-2`);
  // The operator's other names in the zone are never taken for a VM's.
  for (const other of [
    'www.seats.example.edu',
    `ct-${id}-2.other.example.edu`,
    `x.ct-${id}-2.seats.example.edu`,
    `ct-${id}-2seats.example.edu`,
    'seats.example.edu',
  ]) {
    t.is(vmOfHostname(other, 'seats.example.edu'), null, other);
  }
});

test('join codes use an unambiguous alphabet and carry at least 30 bits', (t) => {
  t.true(Math.log2(JOIN_CODE_ALPHABET.length) * JOIN_CODE_LENGTH >= 30);
  for (const ch of '01OIL') t.false(JOIN_CODE_ALPHABET.includes(ch));
  const codes = new Set(Array.from({ length: 1000 }, newJoinCode));
  t.is(codes.size, 1000);
  for (const code of codes)
    t.regex(code, new RegExp(`^[${JOIN_CODE_ALPHABET}]{${JOIN_CODE_LENGTH}}$`));
});

test('join codes are accepted as learners type them', (t) => {
  const code = newJoinCode();
  t.is(normalizeJoinCode(code.toLowerCase()), code);
  t.is(normalizeJoinCode(`${code.slice(0, 4)}-${code.slice(4)}`), code);
  t.is(normalizeJoinCode(` ${code.slice(0, 4)} ${code.slice(4)} `), code);
  t.is(normalizeJoinCode('0OIL0OIL'), null);
  t.is(normalizeJoinCode(code.slice(1)), null);
});

test('request ids are UUIDs, stable for the same inputs and distinct otherwise', (t) => {
  const a = deterministicUuid('ws', 'vm-0', 'insert');
  t.regex(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.is(deterministicUuid('ws', 'vm-0', 'insert'), a);
  t.not(deterministicUuid('ws', 'vm-1', 'insert'), a);
  t.not(deterministicUuid('ws', 'vm-0insert'), a);
});
