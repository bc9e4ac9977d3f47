import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import test from 'ava';
import { validators } from '../../shared/schemas.ts';
import { openApiDocument } from '../../tools/openapi.ts';

const file = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8')) as {
  components: { schemas: Record<string, object> };
};

test('openapi.json is what the ajv schemas generate (run `npm run openapi` after changing them)', (t) => {
  t.deepEqual(file, JSON.parse(JSON.stringify(openApiDocument())));
});

test('the published body schemas accept and refuse what the functions accept and refuse', (t) => {
  const ajv = new Ajv2020({ strict: false, formats: { text: true, 'date-time': true } });
  const cases: Array<[keyof typeof validators, string, unknown[]]> = [
    [
      'createWorkshop',
      'CreateWorkshopBody',
      [
        { name: 'a', seats: 3 },
        { name: 'a', seats: 0 },
        { name: 'a', seats: 2, image: null },
        { seats: 2 },
        { name: 'a', seats: 2, x: 1 },
        { name: 'a', seats: 2, startAt: '2026-12-07T09:00:00Z' },
        { name: 'a', seats: 2, startAt: 9 },
      ],
    ],
    ['extend', 'ExtendBody', [{ minutes: 30 }, { minutes: 0 }, {}]],
    [
      'join',
      'JoinBody',
      [
        { code: 'ABC', name: 'Ada' },
        { code: 'ABC', name: 'Ada', seatToken: null },
        { code: '', name: 'Ada' },
      ],
    ],
  ];
  for (const [validator, name, bodies] of cases) {
    const published = ajv.compile(file.components.schemas[name]!);
    for (const body of bodies) {
      t.is(published(body), validators[validator](body), `${name} ${JSON.stringify(body)}`);
    }
  }
});
