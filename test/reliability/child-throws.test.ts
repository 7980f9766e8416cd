import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { forEachBackend } from '../helpers/backends.ts';

const script = fileURLToPath(new URL('../fixtures/lifetime/throws.ts', import.meta.url));

forEachBackend((_ctx, backend) => {
  it('a child whose target throws exits 1 and prints its name and the stack on stderr', { timeout: 30_000 }, async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...process.execArgv, script, backend]);
    assert.equal(stdout, 'exitCode 1\n');
    assert.match(stderr, /^Process Process-1:\nRangeError: the failure this test expects\n\s+at throwError \(.*targets\.ts:\d+:\d+\)/);
  });
});
