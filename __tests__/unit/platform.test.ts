import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSupportedPlatform } from '../../src/platform.js';

test('the action runs on Linux and refuses every other system with one message that says what to do', () => {
  assert.doesNotThrow(() => assertSupportedPlatform('linux'));
  for (const platform of ['win32', 'darwin', 'freebsd'] as const)
    assert.throws(
      () => assertSupportedPlatform(platform),
      new RegExp(
        `remote-files runs on Linux runners only, and this one is ${platform}: run this step with runs-on: ubuntu-latest`,
      ),
    );
});
