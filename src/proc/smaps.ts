// /proc/<pid>/smaps (and plain maps) into Vma records, in the kernel's address order.

import fs from 'node:fs';
import { PAGE_SIZE, type Vma } from '../model.js';
import { ProcParseError } from './errors.js';

// start-end perms offset dev inode, then the name padded to a fixed column. Anonymous
// mappings end in one trailing space. Names are never trimmed at the end: a file name
// may end in a space, and " (deleted)" belongs to the name.
const HEADER =
  /^([0-9a-f]{1,16})-([0-9a-f]{1,16}) ([r-])([w-])([x-])([sp]) ([0-9a-f]{1,16}) ([0-9a-f]+:[0-9a-f]+) (\d{1,20})(?: +(.*))?$/;
const FIELD = /^([A-Za-z][A-Za-z0-9_]*):(.*)$/;
const FIELD_VALUE = /^\s+\S/;
const VM_FLAG = /^[a-z0-9]{2}$/;

const HEADER_EXPECTED = 'a mapping line "start-end perms offset dev inode [name]"';

/**
 * The mappings of smaps or maps text. Well-formed text, which is what the kernel writes, goes
 * through a scan that never splits the text into lines (smaps of a process with 60,000 VMAs is
 * 45 MB and 1.5 million lines); anything that scan does not accept is parsed line by line, which
 * either reads it the same way or names the line that is wrong.
 */
export function parseSmaps(text: string): Vma[] {
  return scanWellFormed(text) ?? parseSmapsByLine(text);
}

// The line grammar of parseSmapsByLine, restricted to what the kernel writes: a field value starts
// with blanks and a visible character; line ends are \n alone ('.' in its patterns stops at any
// line terminator, so a line holding another one is left to it). HEADER_AT is HEADER itself, its
// ^ and $ dropped, its name's (.*) made to stop at the same terminators, and the \n matched.
const ANY = '[^\\n\\r\\u2028\\u2029]';
const HEADER_AT = new RegExp(`${HEADER.source.slice(1, -1).replaceAll('(.*)', `(${ANY}*)`)}\\n`, 'y');
const FIELD_AT = new RegExp(`(?!VmFlags:)[A-Za-z][A-Za-z0-9_]*:[ \\t]+[^\\s]${ANY}*\\n`, 'y');
const VM_FLAGS_AT = /VmFlags:((?: [a-z0-9]{2})*) ?\n/y;

/** parseSmapsByLine's result for text both accept, or null where this scan gives up. */
function scanWellFormed(text: string): Vma[] | null {
  if (text !== '' && !text.endsWith('\n')) return null;
  const vmas: Vma[] = [];
  let current: Vma | undefined;
  let at = 0;
  while (at < text.length) {
    HEADER_AT.lastIndex = at;
    const header = HEADER_AT.exec(text);
    if (header) {
      const vma = vmaOf(header);
      if (vma === null || (current && vma.start < current.end)) return null;
      vmas.push((current = vma));
      at = HEADER_AT.lastIndex;
      continue;
    }
    if (!current) return null;
    FIELD_AT.lastIndex = at;
    if (FIELD_AT.test(text)) {
      at = FIELD_AT.lastIndex;
      continue;
    }
    VM_FLAGS_AT.lastIndex = at;
    const flags = VM_FLAGS_AT.exec(text);
    if (!flags) return null;
    for (let i = 1; i < flags[1].length; i += 3) current.vmFlags.add(flags[1].slice(i, i + 2));
    at = VM_FLAGS_AT.lastIndex;
  }
  return vmas;
}

/** The reference parser, one line at a time: every error names its line. */
export function parseSmapsByLine(text: string): Vma[] {
  const lines = text.split('\n');
  // The text ends in a newline, so the last element is empty; any other empty line is malformed.
  if (lines[lines.length - 1] === '') lines.pop();

  const vmas: Vma[] = [];
  let current: Vma | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const lineNo = i + 1;
    const header = HEADER.exec(line);
    if (header) {
      current = vmaFromHeader(header, lineNo, line, current);
      vmas.push(current);
      continue;
    }
    const field = FIELD.exec(line);
    if (!field) {
      throw new ProcParseError('smaps', lineNo, current ? `${HEADER_EXPECTED} or a "Key: value" line` : HEADER_EXPECTED, line);
    }
    if (!current) throw new ProcParseError('smaps', lineNo, HEADER_EXPECTED, line);
    const [, key, value] = field;
    if (key === 'VmFlags') {
      addVmFlags(current.vmFlags, value, lineNo, line);
    } else if (!FIELD_VALUE.test(value)) {
      throw new ProcParseError('smaps', lineNo, `a value after "${key}:"`, line);
    }
  }
  return vmas;
}

export function readSmaps(pid: number): Vma[] {
  return parseSmaps(fs.readFileSync(`/proc/${pid}/smaps`, 'utf8'));
}

/**
 * The VMAs without their VmFlags, from /proc/<pid>/maps: smaps walks every page table to count
 * pages, which costs tens of milliseconds per resident GiB; maps does not.
 */
export function readMaps(pid: number): Vma[] {
  return parseSmaps(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
}

function vmaFromHeader(m: RegExpExecArray, lineNo: number, line: string, previous: Vma | undefined): Vma {
  const vma = vmaOf(m);
  if (vma === null) throw new ProcParseError('smaps', lineNo, 'a non-empty, page-aligned address range', line);
  // Callers index pages by address, which needs the kernel's ascending, disjoint order.
  if (previous && vma.start < previous.end) {
    throw new ProcParseError('smaps', lineNo, `a mapping starting at or above ${previous.end.toString(16)}`, line);
  }
  return vma;
}

/** The mapping of a header match, or null when its range is empty or not page-aligned. */
function vmaOf(m: RegExpExecArray): Vma | null {
  const start = parseHex(m[1]);
  const end = parseHex(m[2]);
  if (start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0 || start >= end) return null;
  return {
    start,
    end,
    read: m[3] === 'r',
    write: m[4] === 'w',
    exec: m[5] === 'x',
    mayShare: m[6] === 's',
    offset: parseHex(m[7]),
    dev: m[8],
    inode: Number(m[9]),
    name: m[10] ?? '',
    vmFlags: new Set(),
  };
}

function addVmFlags(flags: Set<string>, value: string, lineNo: number, line: string): void {
  for (const flag of value.split(' ')) {
    if (flag === '') continue;
    if (!VM_FLAG.test(flag)) throw new ProcParseError('smaps', lineNo, 'two-character VmFlags mnemonics', line);
    flags.add(flag);
  }
}

/** Up to 16 hex digits. Above 2^53 only page-aligned values ([vsyscall]) occur, and doubles hold those exactly. */
function parseHex(digits: string): number {
  return digits.length <= 13 ? parseInt(digits, 16) : Number(BigInt(`0x${digits}`));
}
