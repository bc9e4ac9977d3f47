import { spawnSync } from 'node:child_process';
import test from 'ava';
import { unrunnable } from '../helpers/prerequisites.ts';

const SCRIPTS = ['startup/clarateach-startup.sh', 'images/build.sh'];
const hasShellcheck = spawnSync('shellcheck', ['--version'], { stdio: 'ignore' }).status === 0;

test('the startup script and the image build are valid bash', (t) => {
  for (const script of SCRIPTS) {
    const res = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
    t.is(res.status, 0, `${script}: ${res.stderr}`);
  }
});

if (hasShellcheck) {
  test('shellcheck finds nothing, not even style notes', (t) => {
    // Default severity (style): any finding at all makes shellcheck exit non-zero.
    const res = spawnSync('shellcheck', ['--severity=style', ...SCRIPTS], { encoding: 'utf8' });
    t.is(res.stdout + res.stderr, '');
    t.is(res.status, 0);
  });
} else {
  unrunnable(
    'shellcheck finds nothing',
    'shellcheck is not installed (apt-get install shellcheck)',
  );
}
