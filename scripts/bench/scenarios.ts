// The scenarios as data: what each one sets up, the tools it times and the targets it judges them by
// (the list and ids are described at the top of run.ts).
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { needLink, rsyncDown, rsyncFile, rsyncUp, scpDown, scpUp, sftpBatch, sshCat } from './baselines.js';
import { emptyFolder } from './datasets.js';
import { DELTA_SCENARIOS } from './delta-scenarios.js';
import { measure } from './measure.js';
import { dataDir, downloadTools, expectOutputs, expectTree, ours, seed, stored, workspace } from './tools.js';
import {
  BIG,
  bytesLarge,
  bytesSmall,
  DUMP,
  linkEp,
  need,
  nLarge,
  nSmall,
  proxyEp,
  RSS_LIMIT,
  sftpEp,
  shellEp,
  type Scenario,
} from './world.js';

export const SCENARIOS: Scenario[] = [
  {
    id: 'P0',
    title: 'Startup: node -e 0, and the bundle in mode plan (no connection)',
    setup: () => undefined,
    tools: (w) => {
      const ws = workspace(w, 'p0', { '${install_dir}/p1': 'tree' });
      return [
        {
          name: 'node -e 0',
          ours: false,
          command: () => ({ argv: [w.opts.node, '-e', '0'] }),
          check: (m) => (m.code === 0 ? undefined : `exit ${m.code}`),
        },
        {
          name: 'ours (plan)',
          ours: true,
          command: () => ours(w, ws, shellEp(w), { mode: 'plan' }),
          check: expectOutputs({}),
        },
      ];
    },
    targets: [],
  },
  {
    id: 'P1',
    title: 'P1: 2,000 × 4 KiB in 40 folders, first backup into an empty workspace (tar)',
    setup: (w) => need(w, 'p1'),
    tools: (w) =>
      downloadTools(w, {
        id: 'p1',
        ep: shellEp(w),
        src: join(w.scratch, 'p1'),
        transport: 'tar',
        files: nSmall,
        bytes: bytesSmall,
        baselines: ['rsync', 'scp', 'sftp'],
      }),
    targets: [
      { label: 'P1 ours (tar) ≤ 1.0 × rsync -a', kind: 'ratio', ours: 'ours (tar)', base: 'rsync -a', limit: 1.0 },
    ],
  },
  {
    id: 'P1s',
    title: 'P1 over the sftp transport (chrooted SFTP-only account)',
    setup: (w) => need(w, 'sp1'),
    tools: (w) =>
      downloadTools(w, {
        id: 'p1s',
        ep: sftpEp(w),
        src: join(w.sftpData, 'p1'),
        inChroot: '/data/p1',
        transport: 'sftp',
        files: nSmall,
        bytes: bytesSmall,
        baselines: ['sftp', 'scp'],
      }),
    targets: [
      { label: 'P1 ours (sftp) ≤ 0.5 × sftp -r', kind: 'ratio', ours: 'ours (sftp)', base: 'sftp -r', limit: 0.5 },
    ],
  },
  {
    id: 'P2',
    title: 'P2: one 256 MiB file (tar)',
    setup: (w) => need(w, 'big'),
    tools: (w) => {
      const ep = shellEp(w);
      const src = join(w.scratch, 'big.bin');
      const ws = workspace(w, 'p2-tar', { '${install_dir}/big.bin': 'big.bin' });
      const dest = (t: string): string => join(w.tmp, 'dl', `p2-${t}.bin`);
      const prepare = (t: string) => (): void => {
        mkdirSync(join(w.tmp, 'dl'), { recursive: true });
        rmSync(dest(t), { force: true });
      };
      const check = (t: string) => expectTree(() => dest(t), 1, BIG);
      return [
        {
          name: 'ours (tar)',
          ours: true,
          prepare: () => rmSync(dataDir(ws), { recursive: true, force: true }),
          command: () => ours(w, ws, ep, { transport: 'tar' }),
          check: expectOutputs({ files: 1, bytes: BIG }),
        },
        {
          name: 'ssh cat',
          ours: false,
          prepare: prepare('cat'),
          command: () => sshCat(w, ep, src, dest('cat')),
          check: check('cat'),
        },
        {
          name: 'rsync -a',
          ours: false,
          prepare: prepare('rsync'),
          command: () => rsyncFile(w, ep, src, dest('rsync')),
          check: check('rsync'),
        },
        {
          name: 'scp',
          ours: false,
          prepare: prepare('scp'),
          command: () => scpDown(w, ep, src, dest('scp')),
          check: check('scp'),
        },
        {
          name: 'sftp get',
          ours: false,
          prepare: prepare('sftp'),
          command: () => sftpBatch(w, ep, `get ${src} ${dest('sftp')}`),
          check: check('sftp'),
        },
      ];
    },
    targets: [
      { label: 'P2 ours (tar) ≤ 1.15 × ssh cat', kind: 'ratio', ours: 'ours (tar)', base: 'ssh cat', limit: 1.15 },
      { label: 'P2 ours (tar) peak RSS ≤ 150 MB', kind: 'rss', ours: 'ours (tar)', limit: RSS_LIMIT },
    ],
  },
  {
    id: 'P2s',
    title: 'P2 over the sftp transport (chrooted SFTP-only account)',
    setup: (w) => need(w, 'sbig'),
    tools: (w) => {
      const ep = sftpEp(w);
      const ws = workspace(w, 'p2-sftp', { '${install_dir}/big.bin': 'big.bin' });
      const dest = join(w.tmp, 'dl', 'p2s-sftp.bin');
      return [
        {
          name: 'ours (sftp)',
          ours: true,
          prepare: () => rmSync(dataDir(ws), { recursive: true, force: true }),
          command: () => ours(w, ws, ep, { transport: 'sftp' }),
          check: expectOutputs({ files: 1, bytes: BIG }),
        },
        {
          name: 'sftp get',
          ours: false,
          prepare: () => {
            mkdirSync(join(w.tmp, 'dl'), { recursive: true });
            rmSync(dest, { force: true });
          },
          command: () => sftpBatch(w, ep, `get /data/big.bin ${dest}`),
          check: expectTree(() => dest, 1, BIG),
        },
      ];
    },
    targets: [{ label: 'P2 ours (sftp) peak RSS ≤ 150 MB', kind: 'rss', ours: 'ours (sftp)', limit: RSS_LIMIT }],
  },
  {
    id: 'P3',
    title: 'P3: P1 again, nothing changed (tar)',
    setup: (w) => need(w, 'p1'),
    tools: (w) => {
      const ep = shellEp(w);
      const ws = workspace(w, 'p3-tar', { '${install_dir}/p1': 'tree' });
      const dest = join(w.tmp, 'dl', 'p3-rsync');
      return [
        {
          name: 'ours (tar)',
          ours: true,
          prepare: async () => {
            if (!existsSync(stored(ws, 'tree')))
              await seed(w, ws, ep, { transport: 'tar' }, { files: nSmall, bytes: bytesSmall });
          },
          command: () => ours(w, ws, ep, { transport: 'tar' }),
          check: expectOutputs({ files: 0, bytes: 0 }),
        },
        {
          name: 'rsync -a (no change)',
          ours: false,
          prepare: async () => {
            if (!existsSync(dest)) {
              mkdirSync(join(w.tmp, 'dl'), { recursive: true });
              const m = await measure(rsyncDown(w, ep, join(w.scratch, 'p1'), dest), w.tmp);
              if (m.code !== 0) throw new Error(`seeding rsync copy failed: ${m.stderr}`);
            }
          },
          command: () => rsyncDown(w, ep, join(w.scratch, 'p1'), dest),
          check: expectTree(() => dest, nSmall, bytesSmall),
        },
      ];
    },
    targets: [
      {
        label: 'P3 ours (tar) ≤ 1.0 × rsync -a (no change)',
        kind: 'ratio',
        ours: 'ours (tar)',
        base: 'rsync -a (no change)',
        limit: 1.0,
      },
      { label: 'P3 ours (tar) moves 0 bytes', kind: 'bytes0', ours: 'ours (tar)', limit: 0 },
    ],
  },
  {
    id: 'P3s',
    title: 'P3 over the sftp transport (chrooted SFTP-only account)',
    setup: (w) => need(w, 'sp1'),
    tools: (w) => {
      const ep = sftpEp(w);
      const ws = workspace(w, 'p3-sftp', { '${install_dir}/p1': 'tree' });
      return [
        {
          name: 'ours (sftp)',
          ours: true,
          prepare: async () => {
            if (!existsSync(stored(ws, 'tree')))
              await seed(w, ws, ep, { transport: 'sftp' }, { files: nSmall, bytes: bytesSmall });
          },
          command: () => ours(w, ws, ep, { transport: 'sftp' }),
          check: expectOutputs({ files: 0, bytes: 0 }),
        },
      ];
    },
    targets: [{ label: 'P3 ours (sftp) moves 0 bytes', kind: 'bytes0', ours: 'ours (sftp)', limit: 0 }],
  },
  {
    id: 'P4',
    title: 'P4: restore of P1 into an emptied server folder (tar) vs uploads',
    setup: (w) => need(w, 'p4'),
    tools: (w) => {
      const ep = shellEp(w);
      const remote = join(w.scratch, 'p4');
      const ws = workspace(w, 'p4-tar', { '${install_dir}/p4': 'tree' });
      const local = stored(ws, 'tree');
      const check = expectTree(() => remote, nSmall, bytesSmall);
      const seedOnce = async (): Promise<void> => {
        if (!existsSync(local)) await seed(w, ws, ep, { transport: 'tar' }, { files: nSmall, bytes: bytesSmall });
      };
      // rsync and ours fill an existing empty folder; scp -r and sftp put -r would nest into an
      // existing one, so for them the folder is removed and they create it.
      const emptied = async (): Promise<void> => {
        await seedOnce();
        emptyFolder(remote, w.shell);
      };
      const removed = async (): Promise<void> => {
        await seedOnce();
        rmSync(remote, { recursive: true, force: true });
      };
      return [
        {
          name: 'ours (tar) restore',
          ours: true,
          prepare: emptied,
          command: () => ours(w, ws, ep, { transport: 'tar', mode: 'restore' }),
          check: (m, o) => expectOutputs({ files: nSmall })(m, o) ?? check(m),
        },
        { name: 'rsync -a upload', ours: false, prepare: emptied, command: () => rsyncUp(w, ep, local, remote), check },
        { name: 'scp -r upload', ours: false, prepare: removed, command: () => scpUp(w, ep, local, remote), check },
        {
          name: 'sftp put -r',
          ours: false,
          prepare: removed,
          command: () => sftpBatch(w, ep, `put -r ${local} ${remote}`),
          check,
        },
      ];
    },
    targets: [
      {
        label: 'P4 ours (tar) restore ≤ 1.0 × rsync -a upload',
        kind: 'ratio',
        ours: 'ours (tar) restore',
        base: 'rsync -a upload',
        limit: 1.0,
      },
    ],
  },
  {
    id: 'P4s',
    title: 'P4 over the sftp transport (chrooted SFTP-only account)',
    setup: (w) => need(w, 'sp4'),
    tools: (w) => {
      const ep = sftpEp(w);
      const outside = join(w.sftpData, 'p4');
      const ws = workspace(w, 'p4-sftp', { '${install_dir}/p4': 'tree' });
      const local = stored(ws, 'tree');
      const check = expectTree(() => outside, nSmall, bytesSmall);
      const seedOnce = async (): Promise<void> => {
        if (!existsSync(local)) await seed(w, ws, ep, { transport: 'sftp' }, { files: nSmall, bytes: bytesSmall });
      };
      return [
        {
          name: 'ours (sftp) restore',
          ours: true,
          prepare: async () => {
            await seedOnce();
            emptyFolder(outside, w.sftp);
          },
          command: () => ours(w, ws, ep, { transport: 'sftp', mode: 'restore' }),
          check: (m, o) => expectOutputs({ files: nSmall })(m, o) ?? check(m),
        },
        {
          name: 'sftp put -r',
          ours: false,
          prepare: async () => {
            await seedOnce();
            rmSync(outside, { recursive: true, force: true });
          },
          command: () => sftpBatch(w, ep, `put -r ${local} /data/p4`),
          check,
        },
      ];
    },
    targets: [],
  },
  {
    id: 'P5',
    title: 'P5: P1 through a proxy adding 10 ms each way (tar)',
    setup: (w) => need(w, 'p1'),
    tools: (w) =>
      downloadTools(w, {
        id: 'p5',
        ep: proxyEp(w),
        src: join(w.scratch, 'p1'),
        transport: 'tar',
        files: nSmall,
        bytes: bytesSmall,
        baselines: ['rsync', 'sftp'],
      }),
    targets: [
      { label: 'P5 ours (tar) ≤ 1.2 × rsync -a', kind: 'ratio', ours: 'ours (tar)', base: 'rsync -a', limit: 1.2 },
      { label: 'P5 ours (tar) ≤ 0.2 × sftp -r', kind: 'ratio', ours: 'ours (tar)', base: 'sftp -r', limit: 0.2 },
    ],
  },
  {
    id: 'P6',
    title: 'P6: P3 (nothing changed) at 20,000 files vs 2,000 files (tar)',
    setup: (w) => {
      need(w, 'p1');
      need(w, 'p6');
    },
    tools: (w) => {
      const ep = shellEp(w);
      const small = workspace(w, 'p6-2k', { '${install_dir}/p1': 'tree' });
      const large = workspace(w, 'p6-20k', { '${install_dir}/p6': 'tree' });
      const dest = join(w.tmp, 'dl', 'p6-rsync');
      return [
        {
          name: 'ours (tar) 2k',
          ours: true,
          prepare: async () => {
            if (!existsSync(stored(small, 'tree')))
              await seed(w, small, ep, { transport: 'tar' }, { files: nSmall, bytes: bytesSmall });
          },
          command: () => ours(w, small, ep, { transport: 'tar' }),
          check: expectOutputs({ files: 0, bytes: 0 }),
        },
        {
          name: 'ours (tar) 20k',
          ours: true,
          prepare: async () => {
            if (!existsSync(stored(large, 'tree')))
              await seed(w, large, ep, { transport: 'tar' }, { files: nLarge, bytes: bytesLarge });
          },
          command: () => ours(w, large, ep, { transport: 'tar' }),
          check: expectOutputs({ files: 0, bytes: 0 }),
        },
        {
          name: 'rsync -a 20k (no change)',
          ours: false,
          prepare: async () => {
            if (!existsSync(dest)) {
              mkdirSync(join(w.tmp, 'dl'), { recursive: true });
              const m = await measure(rsyncDown(w, ep, join(w.scratch, 'p6'), dest), w.tmp);
              if (m.code !== 0) throw new Error(`seeding rsync copy failed: ${m.stderr}`);
            }
          },
          command: () => rsyncDown(w, ep, join(w.scratch, 'p6'), dest),
          check: expectTree(() => dest, nLarge, bytesLarge),
        },
      ];
    },
    targets: [
      {
        label: 'P6 ours (tar) no-change 20k ≤ 2 × 2k',
        kind: 'ratio',
        ours: 'ours (tar) 20k',
        base: 'ours (tar) 2k',
        limit: 2.0,
      },
    ],
  },
  {
    id: 'P7',
    title:
      'P7: first backup of a 128 MiB SQL dump (~3× compressible) over 100 Mbit/s, 10 ms each way (tar, compression auto)',
    setup: async (w) => {
      need(w, 'dump');
      await needLink(w, 100);
    },
    tools: (w) =>
      downloadTools(w, {
        id: 'p7',
        ep: linkEp(w, 100),
        src: join(w.scratch, 'p7'),
        transport: 'tar',
        files: 1,
        bytes: DUMP,
        baselines: ['rsync -az', 'rsync'],
      }),
    targets: [
      {
        label: 'P7 ours (tar) ≤ 1.0 × rsync -az (100 Mbit/s)',
        kind: 'ratio',
        ours: 'ours (tar)',
        base: 'rsync -az',
        limit: 1.0,
      },
    ],
  },
  {
    id: 'P8',
    title: 'P8: P7 over 1 Gbit/s, 10 ms each way (tar, compression auto)',
    setup: async (w) => {
      need(w, 'dump');
      await needLink(w, 1000);
    },
    tools: (w) =>
      downloadTools(w, {
        id: 'p8',
        ep: linkEp(w, 1000),
        src: join(w.scratch, 'p7'),
        transport: 'tar',
        files: 1,
        bytes: DUMP,
        baselines: ['rsync', 'rsync -az'],
      }),
    targets: [
      {
        label: 'P8 ours (tar) ≤ 1.0 × faster of rsync -a, -az (1 Gbit/s)',
        kind: 'ratio',
        ours: 'ours (tar)',
        bases: ['rsync -a', 'rsync -az'],
        limit: 1.0,
      },
    ],
  },
  {
    id: 'P9',
    title:
      'P9: restore of P7 into an emptied server folder over 100 Mbit/s, 10 ms each way (tar, compression auto) vs rsync -az upload',
    setup: async (w) => {
      need(w, 'dump9');
      await needLink(w, 100);
    },
    tools: (w) => {
      const ep = linkEp(w, 100);
      const remote = join(w.scratch, 'p9');
      const ws = workspace(w, 'p9-tar', { '${install_dir}/p9': 'tree' });
      const local = stored(ws, 'tree');
      const check = expectTree(() => remote, 1, DUMP);
      // The stored copy is seeded once over the direct port (untimed).
      const emptied = async (): Promise<void> => {
        if (!existsSync(local)) await seed(w, ws, shellEp(w), { transport: 'tar' }, { files: 1, bytes: DUMP });
        emptyFolder(remote, w.shell);
      };
      return [
        {
          name: 'ours (tar) restore',
          ours: true,
          prepare: emptied,
          command: () => ours(w, ws, ep, { transport: 'tar', mode: 'restore' }),
          check: (m, o) => expectOutputs({ files: 1 })(m, o) ?? check(m),
        },
        {
          name: 'rsync -az upload',
          ours: false,
          prepare: emptied,
          command: () => rsyncUp(w, ep, local, remote, '-az'),
          check,
        },
      ];
    },
    targets: [
      {
        label: 'P9 ours (tar) restore ≤ 1.0 × rsync -az upload (100 Mbit/s)',
        kind: 'ratio',
        ours: 'ours (tar) restore',
        base: 'rsync -az upload',
        limit: 1.0,
      },
    ],
  },
  {
    id: 'P10',
    title: 'P10: 128 MiB of random bytes over 100 Mbit/s, 10 ms each way (tar, compression auto)',
    setup: async (w) => {
      need(w, 'random');
      await needLink(w, 100);
    },
    tools: (w) =>
      downloadTools(w, {
        id: 'p10',
        ep: linkEp(w, 100),
        src: join(w.scratch, 'p10'),
        transport: 'tar',
        files: 1,
        bytes: DUMP,
        baselines: ['rsync'],
      }),
    targets: [
      {
        label: 'P10 ours (tar) ≤ 1.05 × rsync -a (random, 100 Mbit/s)',
        kind: 'ratio',
        ours: 'ours (tar)',
        base: 'rsync -a',
        limit: 1.05,
      },
    ],
  },
  {
    id: 'P11',
    title: 'P11: P1 (2,000 × 4 KiB) over 100 Mbit/s, 10 ms each way (tar, compression auto)',
    setup: async (w) => {
      need(w, 'p1');
      await needLink(w, 100);
    },
    tools: (w) =>
      downloadTools(w, {
        id: 'p11',
        ep: linkEp(w, 100),
        src: join(w.scratch, 'p1'),
        transport: 'tar',
        files: nSmall,
        bytes: bytesSmall,
        baselines: ['rsync -az'],
      }),
    targets: [
      {
        label: 'P11 ours (tar) ≤ 1.0 × rsync -az (100 Mbit/s)',
        kind: 'ratio',
        ours: 'ours (tar)',
        base: 'rsync -az',
        limit: 1.0,
      },
    ],
  },
  ...DELTA_SCENARIOS,
];
