import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { NODES, runAction } from '../helpers/run-action.js';
import { testTempDir } from '../helpers/temp.js';

// The bundle on a runner system it does not support (simulated: process.platform set before it loads,
// no hook in the action) fails at once with one clear message, before it reads the data folder or
// connects to anything.

for (const node of NODES) {
  for (const platform of ['win32', 'darwin']) {
    test(`${node.name}: on ${platform} the action fails at once, before connecting`, async () => {
      const dir = testTempDir('rf-platform-');
      const entry = join(dir, 'as-other-system.mjs');
      writeFileSync(
        entry,
        `Object.defineProperty(process, 'platform', { value: ${JSON.stringify(platform)} });\n` +
          `await import(${JSON.stringify(resolve('dist/index.js'))});\n`,
      );
      let connections = 0;
      const listener = net.createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((done) => listener.listen(0, '127.0.0.1', done));
      const port = (listener.address() as net.AddressInfo).port;
      const ws = testTempDir('rf-platform-ws-');
      writeFileSync(join(ws, 'remote-files.yml'), 'version: 1\nrecipes:\n  A:\n    remote_files:\n      "/srv/a": a\n');
      try {
        const r = await runAction(
          {
            mode: 'backup',
            store: 'none',
            host: '127.0.0.1',
            port: String(port),
            username: 'nobody',
            password: 'x',
            'insecure-ignore-host-key': 'true',
            domain: 'platform.example',
            'install-dir': '/srv',
          },
          { workspace: ws, node: node.path, entry },
        );
        assert.equal(r.code, 1, r.stdout);
        const errors = r.stdout.split(/\r?\n/).filter((l) => l.startsWith('::error::'));
        assert.deepEqual(
          errors,
          [
            `::error::remote-files runs on Linux runners only, and this one is ${platform}: run this step with runs-on: ubuntu-latest (or another Linux runner). The data folder it stores can be checked out on Windows and macOS.`,
          ],
          r.stdout,
        );
        assert.equal(connections, 0, 'nothing connected');
        assert.deepEqual(readdirSync(ws), ['remote-files.yml'], 'nothing written in the workspace');
      } finally {
        listener.close();
      }
    });
  }
}
