import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Inputs spelt as other actions spell them (`known_hosts`, `proxy_host`) are ignored with a warning; the
// bundle names them again in the error they explain, and says up front what an ignored jump host means.

const DOMAIN = 'example.com';
let server: Sshd;
let ws: string;

before(async () => {
  server = await startSshd({ hostKeyTypes: ['ed25519'] });
  ws = testTempDir('rf-near-miss-');
  writeFileSync(
    join(ws, 'remote-files.yml'),
    'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n',
  );
});

after(async () => {
  await server?.stop();
});

function act(inputs: Record<string, string>): Promise<ActionResult> {
  return runAction(
    {
      mode: 'backup',
      domain: DOMAIN,
      'install-dir': server.users.shell.scratch,
      host: '127.0.0.1',
      port: String(server.port),
      username: 'rf-shell',
      key: server.key.privateKey,
      store: 'none',
      retries: '0',
      timeout: '5',
      ...inputs,
    },
    { workspace: ws },
  );
}

function errorLine(r: ActionResult): string {
  assert.equal(r.code, 1, r.stdout);
  const line = r.stdout.split('\n').find((l) => l.startsWith('::error::'));
  assert.ok(line, r.stdout);
  return line;
}

/** A port nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((done) => s.listen(0, '127.0.0.1', done));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((done) => s.close(done));
  return port;
}

describe('near-miss inputs named again where they explain a failure', () => {
  test('`known_hosts` ignored: the host key refusal names it with the real input', async () => {
    const r = await act({ known_hosts: server.knownHostsLine('ed25519') });
    assert.match(
      r.stdout,
      /::warning::input `known_hosts` is not an input of remote-files and is ignored: did you mean `known-hosts`\?/,
    );
    const error = errorLine(r);
    assert.match(error, /Host key of 127\.0\.0\.1:\d+ is not verified/);
    assert.match(
      error,
      /Note: input `known_hosts` \(did you mean `known-hosts`\?\) was ignored: not an input of remote-files$/,
      error,
    );
  });

  test('`proxy_host` ignored: the warning says the connection is direct, and the connection failure names it', async () => {
    const port = await closedPort();
    const r = await act({
      proxy_host: 'jump.example',
      port: String(port),
      'host-fingerprint': server.fingerprint('ed25519'),
    });
    assert.match(
      r.stdout,
      /::warning::input `proxy_host` is not an input of remote-files and is ignored: did you mean `proxy-host`\? Without `proxy-host`, this run connects to 127\.0\.0\.1 directly, not through a jump host/,
    );
    const error = errorLine(r);
    assert.match(error, new RegExp(`Cannot connect to 127\\.0\\.0\\.1:${port}`), error);
    assert.match(error, /Note: input `proxy_host` \(did you mean `proxy-host`\?\) was ignored/, error);
  });

  test('an error the ignored input cannot explain is left as it is', async () => {
    const r = await act({ known_hosts: 'x', 'install-dir': 'relative' });
    const error = errorLine(r);
    assert.match(error, /input `install-dir`/);
    assert.doesNotMatch(error, /known_hosts/);
  });
});
