// `imgfs binfmt install|remove|status`: lets the kernel execute an image, as the 2011 proposal's
// binfmt loader would have, by registering the image magic with binfmt_misc. The interpreter is
// bin/imgfs-restore, which binfmt_misc runs with the image's path (and any arguments given to
// it) and which runs `imgfs restore` on it.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMG_MAGIC, IMG_VERSION_0 } from './format.js';

const BINFMT_DIR = '/proc/sys/fs/binfmt_misc';
const ENTRY_NAME = 'imgfs';
const ENTRY = path.join(BINFMT_DIR, ENTRY_NAME);
export const INTERPRETER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'imgfs-restore');

export interface BinfmtIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: BinfmtIo = {
  out: (text) => { process.stdout.write(text); },
  err: (text) => { process.stderr.write(text); },
};

const USAGE = `usage: imgfs binfmt install|remove|status
  install  register the image magic with binfmt_misc (mounting it if needed): executing an
           image (chmod +x task.img; ./task.img) then restores it; done already is fine
  remove   unregister it (and unmount binfmt_misc if install mounted it and nothing else uses
           it); not registered is fine
  status   say whether it is registered, and its interpreter
`;

/** The header every image starts with (magic, then version), as binfmt_misc matches it. */
function magicBytes(): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(IMG_MAGIC, 0);
  header.writeUInt32LE(IMG_VERSION_0, 4);
  return header;
}

/** The registration line: :name:type:offset:magic:mask:interpreter:flags, magic \x-escaped. */
function registration(): string {
  const magic = [...magicBytes()].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  return `:${ENTRY_NAME}:M::${magic}::${INTERPRETER}:`;
}

interface Entry {
  enabled: boolean;
  interpreter: string;
  magic: string;
}

function readEntry(): Entry | null {
  if (!existsSync(ENTRY)) return null;
  const text = readFileSync(ENTRY, 'utf8');
  return {
    enabled: /^enabled$/m.test(text),
    interpreter: /^interpreter (.*)$/m.exec(text)?.[1] ?? '',
    magic: /^magic (\S+)$/m.exec(text)?.[1] ?? '',
  };
}

function isCurrent(entry: Entry): boolean {
  return entry.enabled && entry.interpreter === INTERPRETER && entry.magic === magicBytes().toString('hex');
}

/** Left by an install that mounted binfmt_misc: the remove that leaves it unused unmounts it again. */
const MOUNTED_BY_INSTALL = '/run/imgfs/binfmt_misc-mounted';

function ensureMounted(): void {
  if (existsSync(path.join(BINFMT_DIR, 'register'))) return;
  execFileSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT_DIR], { stdio: ['ignore', 'ignore', 'pipe'] });
  mkdirSync(path.dirname(MOUNTED_BY_INSTALL), { recursive: true });
  writeFileSync(MOUNTED_BY_INSTALL, '');
}

/** Unmounts binfmt_misc if our install mounted it and no other entry has been registered since. */
function unmountIfOurs(): boolean {
  if (!existsSync(MOUNTED_BY_INSTALL)) return false;
  rmSync(MOUNTED_BY_INSTALL);
  const entries = readdirSync(BINFMT_DIR).filter((name) => name !== 'register' && name !== 'status');
  if (entries.length > 0) return false;
  execFileSync('umount', [BINFMT_DIR], { stdio: ['ignore', 'ignore', 'pipe'] });
  return true;
}

function install(io: BinfmtIo): void {
  ensureMounted();
  const entry = readEntry();
  if (entry && isCurrent(entry)) {
    io.out(`imgfs binfmt: already installed (interpreter ${INTERPRETER})\n`);
    return;
  }
  if (entry) writeFileSync(ENTRY, '-1'); // another interpreter or a disabled entry: replace it
  writeFileSync(path.join(BINFMT_DIR, 'register'), registration());
  io.out(`imgfs binfmt: installed: executing an image now restores it (interpreter ${INTERPRETER})\n`);
}

function remove(io: BinfmtIo): void {
  if (!readEntry()) {
    io.out('imgfs binfmt: not installed\n');
    return;
  }
  writeFileSync(ENTRY, '-1');
  io.out(`imgfs binfmt: removed${unmountIfOurs() ? '; binfmt_misc, which install had mounted, unmounted' : ''}\n`);
}

function status(io: BinfmtIo): void {
  const entry = readEntry();
  if (!entry) {
    io.out(`imgfs binfmt: not installed${existsSync(path.join(BINFMT_DIR, 'register')) ? '' : ' (binfmt_misc is not mounted)'}\n`);
    return;
  }
  const state = entry.enabled ? 'installed' : 'installed but disabled';
  const stale = entry.interpreter === INTERPRETER ? '' : ` (not this checkout's ${INTERPRETER})`;
  io.out(`imgfs binfmt: ${state}, interpreter ${entry.interpreter}${stale}\n`);
}

/** `imgfs binfmt <command>`; argv holds the arguments after "binfmt". Returns the exit status. */
export function binfmtMain(argv: string[], io: BinfmtIo = processIo): number {
  const commands: Record<string, (io: BinfmtIo) => void> = { install, remove, status };
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    io.out(USAGE);
    return 0;
  }
  const [name, ...extra] = argv;
  const command = name === undefined ? undefined : commands[name];
  const mistake = name === undefined ? 'install, remove or status? (imgfs binfmt --help)'
    : !command ? `unknown command '${name}': install, remove or status (imgfs binfmt --help)`
      : extra.length > 0 ? `${name} takes no arguments, not '${extra[0]}'` : null;
  if (mistake !== null) {
    io.err(`imgfs binfmt: ${mistake}\n`);
    return 2;
  }
  try {
    command!(io);
    return 0;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    io.err(`imgfs binfmt ${name}: ${stderr || (err as Error).message}\n`);
    return 1;
  }
}
