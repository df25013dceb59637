// Opens the SSH connection a run works over: host key verified, credentials tried in a sensible order,
// network failures retried with backoff, optionally through a jump host.
import { Socket } from 'node:net';
import type {
  AuthenticationType,
  AuthHandlerMiddleware,
  CipherAlgorithm,
  Client,
  ClientChannel,
  ConnectConfig,
} from 'ssh2';
// The client alone, not ssh2's index: the index also loads its SSH server, key generator and HTTP(S)
// agents (http, https, tls), ~10 ms of every run's startup for code a client never runs.
import SshClient from 'ssh2/lib/client.js';
import { UserError } from '../errors.js';
import { endpointLabel, makeHostVerifier, type HostKeyPolicy, type HostVerifier } from './hostkeys.js';
import { SshSession } from './session.js';

export interface SshEndpoint {
  host: string;
  port: number;
  username: string;
  privateKey?: string;
  passphrase?: string;
  password?: string;
}

export interface ConnectOptions {
  target: SshEndpoint;
  /** Jump host: the target is reached through a channel forwarded by it. */
  proxy?: SshEndpoint;
  hostKeys: HostKeyPolicy;
  /** Limit for connecting (TCP, handshake and login), for an established connection gone silent, and for an operation that makes no progress (see SessionOptions.idleMs). */
  timeoutMs: number;
  /** Extra attempts after a network failure (refused, reset, timed out). */
  retries: number;
  /** First retry delay; doubles per attempt, capped at 10 s. Tests make it small. */
  retryBaseMs?: number;
  onWarning?: (msg: string) => void;
  onInfo?: (msg: string) => void;
}

const RETRY_CAP_MS = 10_000;

/** AES-GCM first: on CPUs with AES instructions it is much faster than the rest (FIELD-GUIDE §3). */
const CIPHERS: CipherAlgorithm[] = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
  'chacha20-poly1305@openssh.com',
];

/** A failure worth another attempt: the network, not the configuration. */
class TransientError extends Error {}
/** The offered key was refused; another handshake may show a key of another type. */
class HostKeyRefused extends UserError {}

export async function connect(opts: ConnectOptions): Promise<SshSession> {
  // Both inputs are parsed here, so a malformed one fails before any connection is made.
  const targetKeys = makeHostVerifier(opts.hostKeys, opts.target.host, opts.target.port);
  // Each host is pinned by its own fingerprints: `host-fingerprint` never authenticates the jump host,
  // `proxy-fingerprint` never the target (known_hosts lines name their host, so they are shared).
  const proxyKeys = opts.proxy && makeHostVerifier(opts.hostKeys, opts.proxy.host, opts.proxy.port, 'proxy');
  for (const note of targetKeys.notes) opts.onInfo?.(note);
  for (const ep of [opts.target, ...(opts.proxy ? [opts.proxy] : [])]) requireCredentials(ep);

  const via =
    opts.proxy && proxyKeys
      ? { client: await reach(opts.proxy, proxyKeys, undefined, opts), ep: opts.proxy }
      : undefined;
  try {
    const client = await reach(opts.target, targetKeys, via, opts);
    const accepted = targetKeys.accepted;
    return new SshSession(client, label(opts.target), via && { client: via.client, label: label(via.ep) }, {
      idleMs: opts.timeoutMs,
      ...(accepted && { hostKey: `${accepted.type} ${accepted.fingerprint}` }),
    });
  } catch (err) {
    via?.client.end();
    throw err;
  }
}

function label(ep: SshEndpoint): string {
  return endpointLabel(ep.host, ep.port);
}

function requireCredentials(ep: SshEndpoint): void {
  if (!ep.privateKey && ep.password === undefined) {
    throw new UserError(`No credentials for ${ep.username}@${label(ep)}: set \`key\` or \`password\``);
  }
}

interface Via {
  client: Client;
  ep: SshEndpoint;
}

/** One endpoint, with retries on network failures; anything else fails at once. */
async function reach(ep: SshEndpoint, keys: HostVerifier, via: Via | undefined, opts: ConnectOptions): Promise<Client> {
  const base = opts.retryBaseMs ?? 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      const client = await negotiateHostKey(ep, keys, via, opts);
      if (keys.warning) opts.onWarning?.(keys.warning);
      else if (keys.accepted)
        opts.onInfo?.(`Host key of ${label(ep)} verified: ${keys.accepted.type} ${keys.accepted.fingerprint}`);
      return client;
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      const where = `${label(ep)}${via ? ` via jump host ${label(via.ep)}` : ''}`;
      if (attempt >= opts.retries) {
        throw new UserError(
          `Cannot connect to ${where}: ${err.message}${attempt > 0 ? ` (${attempt + 1} attempts)` : ''}`,
        );
      }
      const delay = Math.min(base * 2 ** attempt, RETRY_CAP_MS);
      opts.onInfo?.(
        `Connecting to ${where} failed (${err.message}); retry ${attempt + 1} of ${opts.retries} in ${delay / 1000} s`,
      );
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Handshakes until the host key is settled. ssh2 sees one host key per handshake; when a bare
 * fingerprint (type unknown) did not match, the server may still have a key of another type that does,
 * so handshake again without the refused type (see HostVerifier).
 */
async function negotiateHostKey(
  ep: SshEndpoint,
  keys: HostVerifier,
  via: Via | undefined,
  opts: ConnectOptions,
): Promise<Client> {
  for (;;) {
    try {
      return await handshake(ep, keys, via, opts);
    } catch (err) {
      if (!(err instanceof HostKeyRefused && keys.canTryOtherKeyTypes())) throw err;
    }
  }
}

interface AuthLog {
  tried: AuthenticationType[];
  /** What the server said it accepts, once it has said so. */
  serverAccepts?: AuthenticationType[];
}

/** One attempt: TCP (or a channel forwarded by the jump host), key exchange, host key, login. */
async function handshake(
  ep: SshEndpoint,
  keys: HostVerifier,
  via: Via | undefined,
  opts: ConnectOptions,
): Promise<Client> {
  const sock = via ? await forward(via.client, ep) : undefined;
  return new Promise<Client>((resolve, reject) => {
    const client = new SshClient();
    const auth: AuthLog = { tried: [] };
    let settled = false;
    const fail = (err: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(classify(err, ep, keys, auth, opts));
    };
    // These stay attached after 'ready': until SshSession adds its own, an 'error' event (a jump host
    // failing while the target is still being reached) must find a listener or the process dies.
    client.on('error', fail);
    client.on('close', () => fail(new Error('the server closed the connection during the handshake')));
    client.once('ready', () => {
      settled = true;
      resolve(client);
    });
    try {
      client.connect(clientConfig(ep, keys, auth, opts, sock));
      // ssh2 leaves Nagle's algorithm on: every small request (SFTP, channel opens) then waits for the
      // previous ACK. Measured: SFTP over 2,000 files 34 s → 2.8 s, connect 0.3 s → 0.08 s.
      client.setNoDelay(true);
      const own = (client as unknown as { _sock?: unknown })._sock;
      if (own instanceof Socket) batchWrites(own);
    } catch (err) {
      settled = true;
      // ssh2 parses the private key here; its messages name the problem, never the key's content.
      reject(
        new UserError(`The private key for ${ep.username}@${label(ep)} cannot be used: ${(err as Error).message}`),
      );
    }
  });
}

function clientConfig(
  ep: SshEndpoint,
  keys: HostVerifier,
  auth: AuthLog,
  opts: ConnectOptions,
  sock: ClientChannel | undefined,
): ConnectConfig {
  return {
    host: ep.host,
    port: ep.port,
    username: ep.username,
    ...(ep.privateKey && { privateKey: ep.privateKey }),
    ...(ep.passphrase && { passphrase: ep.passphrase }),
    ...(ep.password !== undefined && { password: ep.password }),
    ...(sock && { sock }),
    authHandler: authHandler(ep, auth),
    hostVerifier: keys.verify,
    readyTimeout: opts.timeoutMs,
    // A server that stops answering without closing (no RST) is declared dead after 3 unanswered
    // keepalives: about timeoutMs, rather than never.
    keepaliveInterval: Math.max(250, Math.ceil(opts.timeoutMs / 3)),
    keepaliveCountMax: 2,
    algorithms: { serverHostKey: keys.algorithms(), cipher: CIPHERS },
  };
}

/**
 * Whatever ssh2 writes in one turn of the event loop leaves in one system call (cork, then uncork on
 * the next tick, before any I/O). ssh2 writes every packet on its own, and with Nagle off each is a
 * syscall and a TCP segment: SFTP over 2,000 files made some 16,000 of them. Reached through ssh2's
 * private `_sock` (a plain TCP connection; a jump host's channel is left alone): if a future ssh2
 * renames it, this simply does nothing.
 */
function batchWrites(sock: Socket): void {
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
  let corked = false;
  sock.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      sock.cork();
      process.nextTick(() => {
        corked = false;
        sock.uncork();
      });
    }
    return write(...args);
  }) as Socket['write'];
}

/** ssh2 stops trying when the handler gives `false`; @types/ssh2 leaves that value out. */
const NO_MORE_METHODS = false as unknown as AuthenticationType;

/**
 * Public key before password (a password sent needlessly is a password exposed), each method once,
 * skipping any the server has said it does not accept. Records what was tried for the error message.
 */
function authHandler(ep: SshEndpoint, log: AuthLog): AuthHandlerMiddleware {
  const methods: AuthenticationType[] = [
    ...(ep.privateKey ? ['publickey' as const] : []),
    ...(ep.password !== undefined ? ['password' as const] : []),
  ];
  return (authsLeft, _partialSuccess, next) => {
    // ssh2 passes null before the server has answered anything.
    if (authsLeft) log.serverAccepts = authsLeft;
    const method = methods.find((m) => !log.tried.includes(m) && (!authsLeft || authsLeft.includes(m)));
    if (method) log.tried.push(method);
    next(method ?? NO_MORE_METHODS);
  };
}

function forward(jump: Client, ep: SshEndpoint): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error) =>
      reject(new TransientError(`the jump host could not open a connection to it: ${err.message}`));
    try {
      jump.forwardOut('127.0.0.1', 0, ep.host, ep.port, (err, stream) => (err ? failed(err) : resolve(stream)));
    } catch (err) {
      failed(err as Error);
    }
  });
}

/** What a failed attempt means: a UserError to stop on, or a TransientError to retry. */
function classify(
  err: Error & { level?: string; code?: string },
  ep: SshEndpoint,
  keys: HostVerifier,
  auth: AuthLog,
  opts: ConnectOptions,
): Error {
  const where = label(ep);
  if (keys.refusal && /Host denied/.test(err.message)) return new HostKeyRefused(keys.refusal);
  // Every key type the refused fingerprints could belong to has been tried.
  if (keys.refusal && /no matching host key format/.test(err.message)) return new UserError(keys.refusal);
  if (err.level === 'client-authentication') {
    const accepts = auth.serverAccepts ? auth.serverAccepts.join(', ') : 'unknown';
    return new UserError(
      `Authentication as ${ep.username}@${where} failed (tried: ${auth.tried.join(', ') || 'none the server accepts'}; the server accepts: ${accepts}). Check \`username\` and the key or password.`,
    );
  }
  if (err.level === 'handshake') return new UserError(`SSH handshake with ${where} failed: ${err.message}`);
  if (err.code === 'ENOTFOUND') return new UserError(`Cannot connect to ${where}: host name ${ep.host} not found`);
  return new TransientError(networkCause(err, opts.timeoutMs));
}

function networkCause(err: Error & { level?: string; code?: string }, timeoutMs: number): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED)';
    case 'ECONNRESET':
      return 'connection reset (ECONNRESET)';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to the host (${err.code})`;
    case 'ETIMEDOUT':
      return 'TCP connection timed out (ETIMEDOUT)';
  }
  if (err.level === 'client-timeout') return `no answer within ${timeoutMs / 1000} s (${err.message})`;
  return err.message;
}
