import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import { validators } from '../../shared/schemas.ts';
import { TOPICS } from '../../shared/topics.ts';

/**
 * The console's view of a class (`GET /workshops/{id}/seats`), the learners' hands (`POST
 * /join/hand` with the seatToken) and the instructor clearing them, on the emulators; the VMs
 * report ready without booting.
 */
let stack: TestStack;
test.before(async () => {
  stack = await startTestStack();
});

const OTHER = { 'x-clarateach-user': 'other@school.example' };

async function readyClass(seats: number) {
  const ws = (await stack.api('POST', '/workshops', { name: 'Room', seats })).body;
  await stack.api('POST', `/workshops/${ws.id}/start`);
  await eventually('instances', () => stack.instancesOf(ws.id).length === Math.ceil(seats / 20));
  for (const report of await stack.readyReports(ws.id)) {
    await stack.push(TOPICS.vmReady, report);
  }
  await stack.untilStatus(ws.id, 'ready');
  return ws as { id: string; joinCode: string };
}

test.serial(
  'the room lists learners, watch URLs with the viewer credential, and hands',
  async (t) => {
    const ws = await readyClass(3);
    const ada = (await stack.api('POST', '/join', { code: ws.joinCode, name: 'Ada' })).body;
    const grace = (await stack.api('POST', '/join', { code: ws.joinCode, name: 'Grace' })).body;
    const secrets = (await stack.services.store.getSecrets(ws.id))!;
    t.truthy(secrets.viewerToken);
    t.false(Object.values(secrets.seatTokens).includes(secrets.viewerToken!));

    const room = await stack.api('GET', `/workshops/${ws.id}/seats`);
    t.is(room.status, 200, room.text);
    t.is(room.body.seats.length, 3);
    const adaSeat = room.body.seats.find((s: any) => s.seat === ada.seat);
    t.is(adaSeat.learner.name, 'Ada');
    t.truthy(Date.parse(adaSeat.learner.joinedAt));
    for (const seat of room.body.seats) {
      const url = new URL(seat.watch);
      t.is(url.pathname, `/vm/${seat.seat}/watch/`);
      t.is(url.searchParams.get('v'), secrets.viewerToken!);
    }
    t.deepEqual(room.body.hands, []);
    t.false(room.text.includes(secrets.seatTokens[ada.seat]!), 'no learner credential in the room');
    t.is((await stack.api('GET', `/workshops/${ws.id}/seats`, undefined, OTHER)).status, 404);

    // Grace raises a hand; again keeps her place; Ada's comes after hers.
    const first = await stack.api('POST', '/join/hand', {
      seatToken: grace.seatToken,
      raised: true,
    });
    t.is(first.status, 200, first.text);
    t.is(first.body.seat, grace.seat);
    const again = await stack.api('POST', '/join/hand', {
      seatToken: grace.seatToken,
      raised: true,
    });
    t.is(again.body.raisedAt, first.body.raisedAt);
    await stack.api('POST', '/join/hand', { seatToken: ada.seatToken, raised: true });
    const hands = (await stack.api('GET', `/workshops/${ws.id}/seats`)).body.hands;
    t.deepEqual(
      hands.map((h: any) => [h.seat, h.name]),
      [
        [grace.seat, 'Grace'],
        [ada.seat, 'Ada'],
      ],
    );

    // Ada lowers hers; the instructor clears Grace's (someone else cannot).
    await stack.api('POST', '/join/hand', { seatToken: ada.seatToken, raised: false });
    t.is(
      (await stack.api('DELETE', `/workshops/${ws.id}/hands/${grace.seat}`, undefined, OTHER))
        .status,
      404,
    );
    const cleared = await stack.api('DELETE', `/workshops/${ws.id}/hands/${grace.seat}`);
    t.is(cleared.status, 200, cleared.text);
    t.deepEqual(cleared.body.hands, []);

    // A freed seat's hand goes with it, and its old seatToken raises none.
    await stack.api('POST', '/join/hand', { seatToken: grace.seatToken, raised: true });
    await stack.api('DELETE', `/workshops/${ws.id}/seats/${grace.seat}`);
    t.deepEqual((await stack.api('GET', `/workshops/${ws.id}/seats`)).body.hands, []);
    const freed = await stack.api('POST', '/join/hand', {
      seatToken: grace.seatToken,
      raised: true,
    });
    t.is(freed.status, 404);
    t.is(freed.body.error.code, 'SEAT_NOT_FOUND');

    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    const ended = await stack.api('POST', '/join/hand', { seatToken: ada.seatToken, raised: true });
    t.is(ended.status, 404, 'the ended class dropped its seat tokens');
    const left = await stack.services.store.workshop(ws.id).collection('hands').get();
    t.is(left.size, 0, 'no hand (with a learner name) outlives the class');
  },
);

test.serial('bad hands and bad routes are 4xx with a code', async (t) => {
  const cases: Array<[string, string, unknown, number, string]> = [
    ['POST', '/join/hand', { seatToken: 'nope', raised: true }, 404, 'SEAT_NOT_FOUND'],
    ['POST', '/join/hand', { seatToken: 'x' }, 400, 'INVALID_REQUEST'],
    ['POST', '/join/hand', 'not json', 400, 'INVALID_REQUEST'],
    ['GET', '/workshops/nope!/seats', undefined, 404, 'NOT_FOUND'],
    ['POST', '/workshops/abcdefghijklmnop/seats', undefined, 405, 'METHOD_NOT_ALLOWED'],
    ['DELETE', '/workshops/abcdefghijklmnop/hands/0', undefined, 404, 'NOT_FOUND'],
    ['GET', '/workshops/abcdefghijklmnop/hands/1', undefined, 405, 'METHOD_NOT_ALLOWED'],
  ];
  for (const [method, path, body, status, code] of cases) {
    const res = await stack.api(method, path, body);
    t.is(res.status, status, `${method} ${path}: ${res.text}`);
    t.is(res.body.error?.code, code, `${method} ${path}`);
  }
});

test.serial(
  'the console and the join page are served to browsers, their settings inline',
  async (t) => {
    const html = { accept: 'text/html,application/xhtml+xml' };
    const page = await stack.api('GET', '/', undefined, html);
    t.is(page.status, 200);
    t.regex(page.headers.get('content-type')!, /text\/html/);
    const config = JSON.parse(
      /<script id="config" type="application\/json">(.*?)<\/script>/s.exec(page.text)![1]!,
    );
    t.is(config.auth, 'dev');
    // Every field the API takes has a control: the form is made from the schema the API checks.
    t.deepEqual(config.createSchema, JSON.parse(JSON.stringify(validators.createWorkshop.schema)));
    t.is(config.joinUrl, `${stack.url}/join`);
    const script = /src="\.\/(assets\/console\.js)"/.exec(page.text)![1]!;
    const js = await stack.api('GET', `/${script}`);
    t.is(js.status, 200);
    t.regex(js.headers.get('content-type')!, /javascript/);
    t.is((await stack.api('GET', '/assets/..%2Fjoin.html')).status, 404);
    // An API client asking the root for JSON still gets the list.
    t.truthy((await stack.api('GET', '/workshops')).body.workshops);
    const join = await stack.api('GET', '/join', undefined, html);
    t.is(join.status, 200);
    t.regex(join.text, /<form id="join">/);
  },
);
