// `imgfs <mountpoint>`: parse the options, recover a stale mount point, mount, and on SIGINT or
// SIGTERM let every frozen task run on before unmounting.

import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { mountTree } from './fs.js';
import { coreFile, dumpFile } from './filekinds.js';
import { mountedDevice } from './proc/mountinfo.js';
import { SnapshotStore } from './sessions.js';
import { squeezeRepeats } from './logrepeats.js';
import { keepIgnoring } from './startsignals.js';
import { serveDevice } from './servedfiles.js';
import { ProcessTree } from './tree.js';
import { UsageError } from './usage.js';

interface Options {
  freeze: boolean;
  freezeTimeoutMs: number;
  allowOther: boolean;
  strictV0: boolean;
  live: boolean;
}

/** The mount point and the options, which may come before it or after it (as mount(8) takes them). */
function parseArguments(args: string[]): { mountPoint: string; options: Options } {
  const options: Options = { freeze: true, freezeTimeoutMs: 2000, allowOther: false, strictV0: false, live: false };
  let mountPoint: string | undefined;
  let optionsEnded = false; // after `--`: a mount point may begin with '-'
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--' && !optionsEnded) {
      optionsEnded = true;
    } else if (optionsEnded || !arg.startsWith('-')) {
      if (mountPoint !== undefined) throw new UsageError(`one mount point only: '${mountPoint}', then '${arg}' (imgfs --help)`);
      mountPoint = arg;
    } else if (arg === '--no-freeze') options.freeze = false;
    else if (arg === '--allow-other') options.allowOther = true;
    else if (arg === '--strict-v0') options.strictV0 = true;
    else if (arg === '--live') options.live = true;
    else if (arg === '--freeze-timeout' || arg.startsWith('--freeze-timeout=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[++i];
      const ms = Number(value);
      if (value === undefined) throw new UsageError('--freeze-timeout needs a number of milliseconds after it');
      if (!Number.isInteger(ms) || ms <= 0) throw new UsageError(`--freeze-timeout needs a positive number of milliseconds, not '${value}'`);
      options.freezeTimeoutMs = ms;
    } else throw new UsageError(`unknown option '${arg}' (imgfs --help lists them)`);
  }
  if (options.live && !options.freeze) throw new UsageError('--live and --no-freeze exclude each other: --live freezes a task for its snapshot');
  if (mountPoint === undefined) throw new UsageError('no mount point given (imgfs --help)');
  if (mountPoint === '') throw new UsageError('the mount point is an empty string');
  return { mountPoint, options };
}

function isMounted(mountPoint: string): boolean {
  return mountedDevice(mountPoint) !== undefined;
}

/** A mount point left by a killed imgfs answers ENOTCONN: detach it so we can mount again. */
function recoverStaleMount(mountPoint: string): void {
  try {
    statSync(mountPoint);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // said below
    if (code !== 'ENOTCONN' && code !== 'ECONNABORTED') throw err;
    execFileSync('fusermount', ['-uz', mountPoint], { stdio: 'ignore' });
    return;
  }
  if (isMounted(mountPoint)) throw new Error(`${mountPoint} is already mounted`);
}

/**
 * The path the kernel will show the mount at (mountinfo has no symbolic links in it). A stale
 * mount point (ENOTCONN) or one that does not exist keeps the path as given.
 */
function realMountPoint(target: string): string {
  try {
    return realpathSync(target);
  } catch {
    return resolve(target);
  }
}

/**
 * What libfuse would refuse, said in one line (libfuse's own refusal is two lines of its own and
 * "fuse failed"). A mount point that does not exist is not made: a mistyped one would be.
 */
function checkMountable(mountPoint: string): void {
  let entries: string[];
  try {
    entries = readdirSync(mountPoint);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${mountPoint} does not exist: make the directory first (./mount.sh makes it)`);
    if (code === 'ENOTDIR') throw new Error(`${mountPoint} is not a directory`);
    throw err;
  }
  if (entries.length > 0) throw new Error(`${mountPoint} is not empty: mount on an empty directory`);
  try {
    closeSync(openSync('/dev/fuse', 'r+'));
  } catch (err) {
    throw new Error(`cannot open /dev/fuse (${(err as NodeJS.ErrnoException).code}): imgfs mounts as root, with the fuse module loaded`);
  }
}

export async function mountImgfs(args: string[]): Promise<number> {
  const { mountPoint: target, options } = parseArguments(args);
  const mountPoint = realMountPoint(target);
  recoverStaleMount(mountPoint);
  checkMountable(mountPoint);
  // From before the mount exists: a signal while it comes up must unmount it, not leave it
  // behind with no server. `on`, not `once`: with no listener left, a second Ctrl-C would kill
  // imgfs halfway through letting its tasks go. SIGHUP too: a foreground mount whose terminal
  // closes lets its tasks go and unmounts (unless started under nohup).
  let stop: (() => void) | null = null;
  let stopAsked = false;
  const onSignal = () => {
    stopAsked = true;
    stop?.();
  };
  for (const signal of keepIgnoring(['SIGINT', 'SIGTERM', 'SIGHUP'])) process.on(signal, onSignal);
  const { log, flush: flushLog } = squeezeRepeats((line) => process.stderr.write(`imgfs: ${line}\n`));
  const store = new SnapshotStore({ freeze: options.freeze, freezeTimeoutMs: options.freezeTimeoutMs, live: options.live, log });
  const tree = new ProcessTree(store, [dumpFile(options.strictV0), coreFile], options.allowOther);
  const mounted = await mountTree(mountPoint, tree, { allowOther: options.allowOther, log });
  const device = mountedDevice(mountPoint);
  if (device === undefined) {
    await mounted.unmount();
    throw new Error(`${mountPoint} is not in /proc/self/mountinfo after mounting it`);
  }
  serveDevice(device);
  return new Promise((done) => {
    let stopping = false;
    stop = async () => {
      if (stopping) return;
      stopping = true;
      store.releaseAll();
      flushLog();
      try {
        if (isMounted(mountPoint)) await mounted.unmount();
        done(0);
      } catch (err) {
        process.stderr.write(`imgfs: unmounting ${mountPoint}: ${(err as Error).message}\n`);
        done(1);
      }
    };
    if (stopAsked) {
      stop();
      return;
    }
    // Unmounted from outside (fusermount -u): nothing will call us again, so let the tasks go.
    setInterval(() => isMounted(mountPoint) || stop?.(), 2000).unref();
    // Last: whoever reads this line may use the mount, or stop it, at once.
    process.stderr.write(`imgfs: mounted on ${mountPoint}\n`);
  });
}
