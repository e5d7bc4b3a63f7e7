// What the kernel tells of sockets through sock_diag (NETLINK_SOCK_DIAG), for the network
// namespace of the asking socket, by inode: which Unix socket is connected to which (a socket
// pair whose two ends are in the process, as Python's asyncio makes its self-pipe), where a
// socket listens or is bound, with its backlog, and what a connected socket is connected to.

import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { NativeError } from './errors.js';
import { AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, TCP_LISTEN } from '../extension-model.js';
import { nativeError, openSocket, receiveDatagram, sendDatagram } from './libc.js';

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const UDIAG_SHOW_NAME = 0x1;
const UDIAG_SHOW_VFS = 0x2;
const UDIAG_SHOW_PEER = 0x4;
const UDIAG_SHOW_RQLEN = 0x10;
const UNIX_DIAG_NAME = 0;
const UNIX_DIAG_VFS = 1;
const UNIX_DIAG_PEER = 2;
const UNIX_DIAG_RQLEN = 4;
const INET_DIAG_SKV6ONLY = 11;
const NLMSG_HEADER_SIZE = 16;
/** struct unix_diag_msg: family, type, state, pad, ino, cookie[2]. */
const UNIX_DIAG_MSG_SIZE = 16;
/** struct inet_diag_msg: family, state, timer, retrans, inet_diag_sockid (48), expires, rqueue, wqueue, uid, inode. */
const INET_DIAG_MSG_SIZE = 72;
const RTA_HEADER_SIZE = 4;
const RECEIVE_BUFFER = 64 * 1024;
const ALL_STATES = 0xffff_ffff;

/**
 * A Unix socket: its type (SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5), sk_state, its peer's
 * inode (0: none), the sun_path it is bound to as the kernel keeps it (a path with its NUL, or an
 * abstract name from its leading NUL; null: not bound), for a listener its backlog, and for a
 * path the inode number of its socket file (low 32 bits; null: none).
 */
export interface UnixSocket {
  type: number;
  state: number;
  peer: number;
  name: Buffer | null;
  backlog: number;
  fileInode: number | null;
}

/**
 * A TCP or UDP socket over IPv4 or IPv6: sk_state, the local address as a struct sockaddr_in or
 * sockaddr_in6 (what bind(2) takes), the peer's likewise (port 0: none), for a listener its
 * backlog, for IPv6 whether it is v6-only.
 */
export interface InetSocket {
  family: number;
  protocol: number;
  state: number;
  address: Buffer;
  peer: Buffer;
  backlog: number;
  v6only: boolean;
}

const align4 = (n: number): number => (n + 3) & ~3;

/** Every Unix socket of our network namespace, by inode. */
export function unixSockets(): Map<number, UnixSocket> {
  // struct unix_diag_req: family, protocol, pad, states, ino (any), show, cookie (any).
  const request = Buffer.alloc(24);
  request.writeUInt8(AF_UNIX, 0);
  request.writeUInt32LE(ALL_STATES, 4);
  request.writeUInt32LE(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN, 12);
  request.writeUInt32LE(0xffff_ffff, 16);
  request.writeUInt32LE(0xffff_ffff, 20);
  const sockets = new Map<number, UnixSocket>();
  query(request, (datagram) => parseUnixDiag(datagram, sockets));
  return sockets;
}

/** The TCP and UDP sockets of our network namespace over IPv4 and IPv6 in the given sk_states, by inode. */
export function inetSockets(states: readonly number[]): Map<number, InetSocket> {
  const sockets = new Map<number, InetSocket>();
  const mask = states.reduce((bits, state) => bits | (1 << state), 0);
  for (const family of [AF_INET, AF_INET6]) {
    for (const protocol of [IPPROTO_TCP, IPPROTO_UDP]) {
      // struct inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (any).
      const request = Buffer.alloc(56);
      request.writeUInt8(family, 0);
      request.writeUInt8(protocol, 1);
      request.writeUInt32LE(mask, 4);
      try {
        query(request, (datagram) => parseInetDiag(datagram, protocol, sockets));
      } catch (err) {
        // A kernel without this protocol's diag module (udp_diag, say) answers ENOENT.
        if (!(err instanceof NativeError && err.errno === constants.errno.ENOENT)) throw err;
      }
    }
  }
  return sockets;
}

/** Sends one SOCK_DIAG_BY_FAMILY dump request and hands each reply datagram to parse until it says done. */
function query(body: Buffer, parse: (datagram: Buffer) => boolean): void {
  const fd = openSocket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
  try {
    const request = Buffer.alloc(NLMSG_HEADER_SIZE + body.length);
    request.writeUInt32LE(request.length, 0);
    request.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    request.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
    body.copy(request, NLMSG_HEADER_SIZE);
    sendDatagram(fd, request, 'sock_diag');
    const buffer = Buffer.alloc(RECEIVE_BUFFER);
    for (;;) {
      const got = receiveDatagram(fd, buffer, 'sock_diag');
      if (parse(buffer.subarray(0, got))) return;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Calls each(message start, message end) for the socket messages of one reply datagram at least
 * minSize bytes long; returns true at its end (NLMSG_DONE). Throws on an error message or a
 * malformed one.
 */
function eachMessage(datagram: Buffer, minSize: number, each: (start: number, end: number) => void): boolean {
  for (let at = 0; at + NLMSG_HEADER_SIZE <= datagram.length;) {
    const length = datagram.readUInt32LE(at);
    const type = datagram.readUInt16LE(at + 4);
    if (length < NLMSG_HEADER_SIZE || at + length > datagram.length) throw new Error(`sock_diag: message of ${length} bytes at ${at} of ${datagram.length}`);
    if (type === NLMSG_DONE) return true;
    if (type === NLMSG_ERROR) {
      const errno = length >= NLMSG_HEADER_SIZE + 4 ? -datagram.readInt32LE(at + NLMSG_HEADER_SIZE) : 0;
      throw nativeError(errno, 'sock_diag');
    }
    if (type === SOCK_DIAG_BY_FAMILY && length >= NLMSG_HEADER_SIZE + minSize) each(at + NLMSG_HEADER_SIZE, at + length);
    at += align4(length);
  }
  return false;
}

/** Calls each(type, value) for the attributes in datagram[start, end). */
function eachAttribute(datagram: Buffer, start: number, end: number, each: (type: number, value: Buffer) => void): void {
  for (let attr = start; attr + RTA_HEADER_SIZE <= end;) {
    const attrLength = datagram.readUInt16LE(attr);
    if (attrLength < RTA_HEADER_SIZE || attr + attrLength > end) throw new Error(`sock_diag: attribute of ${attrLength} bytes at ${attr}`);
    each(datagram.readUInt16LE(attr + 2), datagram.subarray(attr + RTA_HEADER_SIZE, attr + attrLength));
    attr += align4(attrLength);
  }
}

/** Adds the sockets of one unix_diag reply datagram to `into`; returns true at its end. */
export function parseUnixDiag(datagram: Buffer, into: Map<number, UnixSocket>): boolean {
  return eachMessage(datagram, UNIX_DIAG_MSG_SIZE, (msg, end) => {
    const socket: UnixSocket = { type: datagram.readUInt8(msg + 1), state: datagram.readUInt8(msg + 2), peer: 0, name: null, backlog: 0, fileInode: null };
    eachAttribute(datagram, msg + UNIX_DIAG_MSG_SIZE, end, (type, value) => {
      if (type === UNIX_DIAG_PEER && value.length >= 4) socket.peer = value.readUInt32LE(0);
      else if (type === UNIX_DIAG_NAME && value.length > 0) socket.name = Buffer.from(value);
      // struct unix_diag_vfs: the socket file's inode number (u32) and device.
      else if (type === UNIX_DIAG_VFS && value.length >= 8) socket.fileInode = value.readUInt32LE(0);
      // struct unix_diag_rqlen: rqueue, wqueue; a listener's wqueue is its backlog.
      else if (type === UNIX_DIAG_RQLEN && value.length >= 8 && socket.state === TCP_LISTEN) socket.backlog = value.readUInt32LE(4);
    });
    into.set(datagram.readUInt32LE(msg + 4), socket);
  });
}

/** Adds the sockets of one inet_diag reply datagram (of the given protocol) to `into`; returns true at its end. */
export function parseInetDiag(datagram: Buffer, protocol: number, into: Map<number, InetSocket>): boolean {
  return eachMessage(datagram, INET_DIAG_MSG_SIZE, (msg, end) => {
    const family = datagram.readUInt8(msg);
    if (family !== AF_INET && family !== AF_INET6) throw new Error(`sock_diag: address family ${family} in an inet_diag reply`);
    const state = datagram.readUInt8(msg + 1);
    // inet_diag_sockid at msg + 4: sport, dport (big-endian), src[4], dst[4], if, cookie[2].
    const sockaddr = (portAt: number, addressAt: number): Buffer => {
      const address = Buffer.alloc(family === AF_INET ? 16 : 28);
      address.writeUInt16LE(family, 0);
      datagram.copy(address, 2, portAt, portAt + 2);
      if (family === AF_INET) datagram.copy(address, 4, addressAt, addressAt + 4);
      else {
        datagram.copy(address, 8, addressAt, addressAt + 16);
        address.writeUInt32LE(datagram.readUInt32LE(msg + 40), 24); // sin6_scope_id: the interface
      }
      return address;
    };
    const socket: InetSocket = { family, protocol, state, address: sockaddr(msg + 4, msg + 8), peer: sockaddr(msg + 6, msg + 24), backlog: 0, v6only: false };
    // A listener's wqueue is its backlog (tcp_diag_get_info).
    if (state === TCP_LISTEN) socket.backlog = datagram.readUInt32LE(msg + 60);
    eachAttribute(datagram, msg + INET_DIAG_MSG_SIZE, end, (type, value) => {
      if (type === INET_DIAG_SKV6ONLY && value.length >= 1) socket.v6only = value.readUInt8(0) !== 0;
    });
    into.set(datagram.readUInt32LE(msg + 68), socket);
  });
}
