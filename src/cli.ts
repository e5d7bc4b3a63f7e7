// imgfs command line: thin on purpose. Every failure ends as one line on stderr and a non-zero exit.

import { UsageError } from './usage.js';

const HELP = `usage:
  imgfs <mountpoint> [options]     mount in the foreground (Ctrl-C or SIGTERM unmounts); the
                                   options may come before the mount point too
  imgfs show <image|-> [--json]    print an image the way a person reads it
  imgfs restore <image|-> [options]
                                   bring the dumped process back to life (imgfs restore --help)
  imgfs binfmt install|remove|status
                                   let the kernel run an image (./task.img restores it)

mount options:
  --no-freeze            never freeze a running task: reading the dump of a task that is not
                         stopped fails with EINVAL (the 2011 proposal's semantics); a stopped
                         task is traced only for its snapshot, and reads fail with EINVAL once
                         it has run since
  --freeze-timeout <ms>  how long opening a dump waits for every thread to stop (default 2000);
                         past it the open fails with EBUSY and the task runs on
  --live                 let a running task run on as soon as its snapshot is taken (its freeze
                         then lasts about 50 ms per resident GiB): its pages are read from a
                         copy-on-write copy of its memory, a forked process (imgfs:<pid>) that
                         stays stopped and is killed at the last close of the task's files
  --allow-other          let other users in (each reads only the processes they own)
  --strict-v0            dump files end at the v0 terminator, without the extension a restore
                         needs (exe, threads, FPU state, signal handlers, files, fds)
  -h, --help             this text

  ./mount.sh <mountpoint> [options] runs the same mount in the background; ./mount.sh -u unmounts.`;

const COMMANDS = ['show', 'restore', 'binfmt'];

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '-h' || first === '--help' || (!COMMANDS.includes(first) && argv.some((arg) => arg === '-h' || arg === '--help'))) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (first === undefined) throw new UsageError('no mount point or command given (imgfs --help)');
  // Each command loads only its own modules: a restore's start-up is part of its time.
  if (first === 'show') return (await import('./show.js')).showMain(rest);
  if (first === 'restore') return (await import('./restore/main.js')).restoreMain(rest);
  if (first === 'binfmt') return (await import('./binfmt.js')).binfmtMain(rest);
  const { mountImgfs } = await import('./mount.js');
  // fuse-native keeps the event loop alive after an unmount: leave explicitly.
  process.exit(await mountImgfs(argv));
}

// A reader that stops early (`imgfs show task.img | head`) is not a failure: stop quietly, as the
// tools such a pipe ends in expect.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') process.stderr.write(`imgfs: standard output: ${err.message}\n`);
  process.exit(err.code === 'EPIPE' ? 0 : 1);
});

// Node opens its debugger on SIGUSR1 (a port on which whoever connects runs code as this
// process, root here): a listener stops that (bin/imgfs installs one before anything loads). One
// that came before it did, in Node's own start-up, is closed again. The restorer passes SIGUSR1
// on to its process.
process.on('SIGUSR1', () => undefined);
void import('node:inspector').then((inspector) => {
  if (inspector.url() !== undefined) inspector.close();
});

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err: Error) => {
    process.stderr.write(`imgfs: ${err.message}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
