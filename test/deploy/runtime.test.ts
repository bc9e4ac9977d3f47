import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { REPO } from './harness.ts';

/**
 * The suite runs on the Node.js the functions are deployed on: `npm test` finds the `node`
 * devDependency (node_modules/.bin) before the machine's own Node, and so do the tests it starts.
 */
test('the tests run on the major Node.js version deploy.sh deploys', (t) => {
  const deployed = Number(
    /--runtime=nodejs(\d+)/.exec(readFileSync(join(REPO, 'deploy.sh'), 'utf8'))?.[1],
  );
  t.true(deployed >= 24, `deploy.sh deploys nodejs${deployed}`);
  t.is(Number(process.versions.node.split('.')[0]), deployed, `running on ${process.version}`);
});
