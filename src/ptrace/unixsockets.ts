// Which Unix socket is connected to which, by inode: the kernel tells only through sock_diag
// (NETLINK_SOCK_DIAG, UDIAG_SHOW_PEER), for the network namespace of the asking socket. A dump
// needs it to know a socket pair whose two ends are in the process (an event loop's self-pipe made
// with socketpair(2), as Python's asyncio makes it), which a restore can make again.

import { closeSync } from 'node:fs';
import { check, libc, nativeError } from './libc.js';

const rawSocket = libc.func('int socket(int domain, int type, int protocol)');
const rawSend = libc.func('intptr_t send(int fd, void *buf, size_t len, int flags)');
const rawRecv = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');

const AF_NETLINK = 16;
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const UDIAG_SHOW_PEER = 0x4;
const UNIX_DIAG_PEER = 2;
const NLMSG_HEADER_SIZE = 16;
/** struct unix_diag_msg: family, type, state, pad, ino, cookie[2]. */
const UNIX_DIAG_MSG_SIZE = 16;
const RTA_HEADER_SIZE = 4;
const RECEIVE_BUFFER = 64 * 1024;

/** A Unix socket's type (SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5) and its peer's inode (0: none). */
export interface UnixSocket {
  type: number;
  peer: number;
}

const align4 = (n: number): number => (n + 3) & ~3;

/** Every Unix socket of our network namespace, by inode. */
export function unixSockets(): Map<number, UnixSocket> {
  const fd = check(rawSocket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG) as number, () => 'socket(AF_NETLINK, NETLINK_SOCK_DIAG)');
  try {
    const request = Buffer.alloc(NLMSG_HEADER_SIZE + 24);
    request.writeUInt32LE(request.length, 0);
    request.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    request.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
    // struct unix_diag_req: family, protocol, pad, states (all), ino (any), show, cookie (any).
    request.writeUInt8(AF_UNIX, 16);
    request.writeUInt32LE(0xffff_ffff, 20);
    request.writeUInt32LE(UDIAG_SHOW_PEER, 28);
    request.writeUInt32LE(0xffff_ffff, 32);
    request.writeUInt32LE(0xffff_ffff, 36);
    check(Number(rawSend(fd, request, request.length, 0)), () => 'send(sock_diag)');
    const sockets = new Map<number, UnixSocket>();
    const buffer = Buffer.alloc(RECEIVE_BUFFER);
    for (;;) {
      const got = check(Number(rawRecv(fd, buffer, buffer.length, 0)), () => 'recv(sock_diag)');
      if (parseUnixDiag(buffer.subarray(0, got), sockets)) return sockets;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Adds the sockets of one sock_diag reply datagram to `into`; returns true at its end (NLMSG_DONE).
 * Throws on an error message or a malformed one.
 */
export function parseUnixDiag(datagram: Buffer, into: Map<number, UnixSocket>): boolean {
  for (let at = 0; at + NLMSG_HEADER_SIZE <= datagram.length;) {
    const length = datagram.readUInt32LE(at);
    const type = datagram.readUInt16LE(at + 4);
    if (length < NLMSG_HEADER_SIZE || at + length > datagram.length) throw new Error(`sock_diag: message of ${length} bytes at ${at} of ${datagram.length}`);
    if (type === NLMSG_DONE) return true;
    if (type === NLMSG_ERROR) {
      const errno = length >= NLMSG_HEADER_SIZE + 4 ? -datagram.readInt32LE(at + NLMSG_HEADER_SIZE) : 0;
      throw nativeError(errno, 'sock_diag');
    }
    if (type === SOCK_DIAG_BY_FAMILY && length >= NLMSG_HEADER_SIZE + UNIX_DIAG_MSG_SIZE) {
      const msg = at + NLMSG_HEADER_SIZE;
      let peer = 0;
      for (let attr = msg + UNIX_DIAG_MSG_SIZE; attr + RTA_HEADER_SIZE <= at + length;) {
        const attrLength = datagram.readUInt16LE(attr);
        if (attrLength < RTA_HEADER_SIZE || attr + attrLength > at + length) throw new Error(`sock_diag: attribute of ${attrLength} bytes at ${attr}`);
        if (datagram.readUInt16LE(attr + 2) === UNIX_DIAG_PEER && attrLength >= RTA_HEADER_SIZE + 4) peer = datagram.readUInt32LE(attr + RTA_HEADER_SIZE);
        attr += align4(attrLength);
      }
      into.set(datagram.readUInt32LE(msg + 4), { type: datagram.readUInt8(msg + 1), peer });
    }
    at += align4(length);
  }
  return false;
}
