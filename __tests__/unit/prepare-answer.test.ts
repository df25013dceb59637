import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePrepare, PREPARE_MARK } from '../../src/transfer/remote-scripts.js';

test('the prepare answer: exit status, and the paths whose newest times changed', () => {
  const paths = ['/srv/db', '/srv/new'];
  const out = `${PREPARE_MARK}3\nm 1.5 c 1.5\n-\nm 2.25 c 2.25\n-\ndump failed`;
  assert.deepEqual(parsePrepare(out, paths), { code: 3, changed: ['/srv/db'], output: 'dump failed' });
  assert.deepEqual(parsePrepare(`${PREPARE_MARK}2\nm 1.5 c 1.5\n-\nm 1.5 c 1.5\n-`, paths), { code: 2, changed: [], output: '' });
  assert.equal(parsePrepare('bash: no such file', paths), null);
  assert.equal(parsePrepare(`${PREPARE_MARK}1\nm 1 c 1`, paths), null);
});
