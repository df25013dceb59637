import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNewest, parsePrepare, PREPARE_MARK } from '../../src/transfer/tar/remote-scripts.js';

test('the prepare answer: the readings before the command, then its own output; the reading after', () => {
  const paths = ['/srv/db', '/srv/new'];
  assert.deepEqual(parsePrepare(`${PREPARE_MARK}\nm 1.5 c 1.5\n-\ndump failed`, paths), {
    before: ['m 1.5 c 1.5', '-'],
    output: 'dump failed',
  });
  assert.equal(parsePrepare('bash: no such file', paths), null);
  assert.equal(parsePrepare(`${PREPARE_MARK}\nm 1 c 1`, paths), null);
  assert.deepEqual(parseNewest('m 2.25 c 2.25\n-\n', paths), ['m 2.25 c 2.25', '-']);
  assert.equal(parseNewest('m 2.25 c 2.25\n', paths), null);
  assert.deepEqual(parseNewest('', []), []);
});
