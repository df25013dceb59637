// ssh2 publishes types for its index only; src/ssh/connect.ts imports the client module itself.
declare module 'ssh2/lib/client.js' {
  import type { Client } from 'ssh2';
  const SshClient: typeof Client;
  export default SshClient;
}
