/**
 * The 9:00 rush of three rooms on the local stack, on real Docker: three classes of 20 seats
 * started at once on this one machine (every VM's seats share its Docker), from their start to
 * all of them ready, and their 60 learners joining, against one class of 20 in the same run.
 */
import { fromLearner, instructor, startBootingStack } from './stack.ts';
import { ms, times, type Row } from './stats.ts';

/** What the calls here read of an answer. */
interface View {
  id: string;
  joinCode: string;
  status: string;
  workshopId: string;
  seat: number;
}

const SEATS = 20;
const ROOMS = 3;
const READY_WITHIN_MS = 20 * 60_000;

export async function classesOnDocker(
  env: { projectId: string; firestoreHost: string; pubsubHost: string },
  cleanups: Array<() => Promise<void>>,
): Promise<Row[]> {
  const { local, call: request } = await startBootingStack(env, cleanups);
  const call = (method: string, path: string, body?: unknown, headers = {}) =>
    request<View>(method, path, body, headers);
  const until = async (what: string, check: () => Promise<boolean>, limitMs: number) => {
    const deadline = Date.now() + limitMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  };

  /** `rooms` classes started at once: time to all ready, learners seated; then all ended. */
  const rush = async (rooms: number, round: string) => {
    const classes: Array<{ id: string; code: string; owner: Record<string, string> }> = [];
    for (let i = 0; i < rooms; i++) {
      const owner = instructor(`rush${round}-${i}`);
      const created = await call('POST', '/workshops', { name: `Rush ${i}`, seats: SEATS }, owner);
      if (created.status !== 201) throw new Error(`create: ${JSON.stringify(created.body)}`);
      classes.push({ id: created.body.id, code: created.body.joinCode, owner });
    }
    const end = () =>
      Promise.all(classes.map((c) => call('DELETE', `/workshops/${c.id}`, undefined, c.owner)));
    cleanups.push(async () => void (await end()));
    const started = performance.now();
    const starts = await Promise.all(
      classes.map((c) => call('POST', `/workshops/${c.id}/start`, undefined, c.owner)),
    );
    if (starts.some((s) => s.status !== 202))
      throw new Error(`start: ${JSON.stringify(starts.map((s) => s.body))}`);
    await until(
      `${rooms} classes ready`,
      async () => {
        const views = await Promise.all(
          classes.map((c) => call('GET', `/workshops/${c.id}`, undefined, c.owner)),
        );
        const bad = views.find((v) => !['provisioning', 'ready'].includes(v.body.status));
        if (bad)
          throw new Error(
            `a class is ${bad.body.status}: ${JSON.stringify(bad.body).slice(0, 500)}`,
          );
        return views.every((v) => v.body.status === 'ready');
      },
      READY_WITHIN_MS,
    );
    const readyMs = performance.now() - started;
    // Every learner of every room from one address: three rooms behind one school NAT.
    const joins = await Promise.all(
      Array.from({ length: rooms * SEATS }, (_, i) =>
        call(
          'POST',
          '/join',
          { code: classes[i % rooms]!.code, name: `Learner ${i}` },
          fromLearner(0),
        ),
      ),
    );
    const seats = new Set(
      joins.filter((j) => j.status === 200).map((j) => `${j.body.workshopId}/${j.body.seat}`),
    );
    await end();
    await until(
      'every instance deleted',
      async () => local.standin.instances().length === 0,
      10 * 60_000,
    );
    return { readyMs, seated: seats.size };
  };

  const one = await rush(1, 'a');
  const three = await rush(ROOMS, 'b');
  const ratio = three.readyMs / one.readyMs;
  return [
    {
      what: `local stack on real Docker: ${ROOMS} classes × ${SEATS} seats started at once, start to all ready; learners seated, all from one address`,
      measured: `${ms(three.readyMs)} (${times(ratio)} one class), ${three.seated}/${ROOMS * SEATS} seated`,
      baseline: `1 class × ${SEATS}: ${ms(one.readyMs)}, ${one.seated}/${SEATS} seated`,
      target: `all ready, ${ROOMS * SEATS}/${ROOMS * SEATS} seated`,
      verdict: three.seated === ROOMS * SEATS && one.seated === SEATS ? 'met' : 'missed',
    },
  ];
}
