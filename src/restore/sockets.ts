// Sockets a restore makes again: listeners and bound datagram sockets, at their address,
// connected datagram sockets, to their peer, and sockets bound to nothing, of their kind.
// Connections and queued datagrams are not in the image: a listener's clients connect anew, and a
// connection comes back closed by its peer.

import { chmodSync, chownSync, closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { constants } from 'node:os';
import {
  AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, describeConnection, describeSocket, describeSocketKind, SO_REUSEADDR, SO_REUSEPORT, SOCK_DGRAM, SOCK_STREAM, SOL_NETLINK, SOL_SOCKET, unixSocketPath,
  type BoundSocket, type ConnectedSocket, type ExtensionFd, type UnboundSocket,
} from '../extension-model.js';
import { NativeError } from '../ptrace/errors.js';
import { O_CLOEXEC, type RemoteTask } from '../ptrace/remote.js';
import { knownSocketOption, socketOptionLabel } from '../socketoptions.js';
import { placeEverywhere } from './eventfds.js';
import { IPPROTO_IPV6, IPV6_V6ONLY, O_PATH } from '../ptrace/syscalls.js';


/**
 * Makes the socket of fds (one socket, dup'd to each number) again: created, its options set,
 * bound, listening as it did. When the address cannot be had (the dumped process still holds
 * it, say), an idle socket of the same kind stands in for it, with one warning line: a listener
 * on an address nobody knows, which never gets a connection, or an unbound datagram socket, so
 * that a program polling it waits as it would for clients, where /dev/null would read as ready
 * forever and spin it.
 */
export function restoreBoundSocket(remote: RemoteTask, fds: readonly ExtensionFd[], warn: (line: string) => void): void {
  const socket = fds[0].boundSocket!;
  let created: number;
  try {
    created = bindSocket(remote, socket, fds[0], warn);
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    created = standIn(remote, socket, fds[0]);
    warn(`fd ${fds[0].fd} (${fds[0].target}): ${describeSocket(socket)} cannot be ${socket.listening ? 'listened on' : 'bound'} again (${err.code}): ` +
      `an idle ${socket.listening ? 'listener on an unused address' : 'unbound socket'} stands in for it`);
  }
  placeEverywhere(remote, created, fds);
}

/** A new socket of the recorded family, type and protocol, set up by setUp; closed again if that fails. */
function newSocket(remote: RemoteTask, socket: Pick<BoundSocket, 'family' | 'type' | 'protocol'>, setUp: (created: number) => void): number {
  const created = remote.socket(socket.family, socket.type | O_CLOEXEC, socket.protocol);
  try {
    setUp(created);
    return created;
  } catch (err) {
    remote.close(created);
    throw err;
  }
}

/** The socket, bound (and listening) as it was. */
function bindSocket(remote: RemoteTask, socket: BoundSocket, fd: ExtensionFd, warn: (line: string) => void): number {
  return newSocket(remote, socket, (created) => {
    setBindFlags(remote, created, withListenerReuse(socket));
    setOptions(remote, created, fd, warn);
    bindAgain(remote, created, socket);
    if (socket.listening) remote.listen(created, socket.backlog);
    if (socket.file) giveSocketFile(remote, socket, socket.file, fd, warn);
  });
}

/**
 * A socket bound to no address made again: of its kind, with the flags and options its later bind
 * and use depend on, so that the program's sendto, connect, bind or ioctl on it works as it would
 * have. Where this kernel or the restorer cannot make one of its kind (a raw socket without
 * CAP_NET_RAW): /dev/null, with one warning.
 */
export function restoreUnboundSocket(remote: RemoteTask, fds: readonly ExtensionFd[], warn: (line: string) => void): void {
  const socket = fds[0].unboundSocket!;
  let created: number;
  try {
    created = newSocket(remote, socket, (fd) => {
      setBindFlags(remote, fd, socket);
      setOptions(remote, fd, fds[0], warn);
    });
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    warn(`fd ${fds[0].fd} (${fds[0].target}): ${describeSocketKind(socket)}, unbound, cannot be made here (${err.code}): replaced by /dev/null`);
    created = remote.openat('/dev/null', fsConstants.O_RDWR | O_CLOEXEC);
  }
  placeEverywhere(remote, created, fds);
}

/**
 * The options a bind depends on, which the socket records hold as flags: SO_REUSEADDR,
 * SO_REUSEPORT, and IPV6_V6ONLY (an IPv6 socket's, set either way).
 */
type BindFlags = Pick<UnboundSocket, 'family' | 'reuseaddr' | 'reuseport' | 'v6only'>;

function setBindFlags(remote: RemoteTask, fd: number, socket: BindFlags): void {
  if (socket.reuseaddr) remote.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (socket.reuseport) remote.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (socket.family === AF_INET6) remote.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, socket.v6only ? 1 : 0);
}

const SHUT_RDWR = 2;
const NETLINK_ADD_MEMBERSHIP = 1;

/**
 * A netlink socket made again: of its protocol, bound (the kernel picks its port id, as for any
 * new socket), a member of its multicast groups again, so that a program watching the kernel's
 * events (links, addresses, uevents) gets them again. A group the kernel refuses here (one that
 * takes CAP_NET_ADMIN, without it): one warning naming it.
 */
export function restoreNetlinkSocket(remote: RemoteTask, fds: readonly ExtensionFd[], warn: (line: string) => void): void {
  const socket = fds[0].netlink!;
  const created = newSocket(remote, { family: AF_NETLINK, type: socket.type, protocol: socket.protocol }, (fd) => {
    // struct sockaddr_nl: family, pad, port id 0 (the kernel's choice), groups 0.
    const address = Buffer.alloc(12);
    address.writeUInt16LE(AF_NETLINK, 0);
    remote.bind(fd, address);
    const refused: string[] = [];
    for (const group of socket.groups) {
      try {
        remote.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
      } catch (err) {
        if (!(err instanceof NativeError)) throw err;
        refused.push(`${group} (${err.code})`);
      }
    }
    if (refused.length > 0) warn(`fd ${fds[0].fd} (${fds[0].target}): netlink group${refused.length === 1 ? '' : 's'} ${refused.join(', ')} not joined again`);
  });
  placeEverywhere(remote, created, fds);
}

/**
 * Makes a socket that was connected to a peer outside the process again, as far as a restore
 * can. A datagram socket is connected to the same peer again (a default destination is all a
 * datagram connection is), from the same local address where that is free. A stream
 * connection's peer and sequence numbers cannot be had back: it comes back as a connection its
 * peer has closed, with one warning, so the program meets the dropped connection it handles
 * anyway (reads end, writes fail with EPIPE, poll and epoll report a hang-up) and connects anew,
 * where /dev/null would swallow its writes and epoll would refuse to watch it.
 */
export function restoreConnectedSocket(remote: RemoteTask, fds: readonly ExtensionFd[], warn: (line: string) => void): void {
  const socket = fds[0].connectedSocket!;
  const what = `fd ${fds[0].fd} (${fds[0].target}): ${describeConnection(socket)}`;
  let created: number;
  if (socket.type === SOCK_DGRAM && socket.peer.length > 2) {
    try {
      created = reconnect(remote, socket, fds[0], what, warn);
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      created = closedConnection(remote, socket);
      warn(`${what}: cannot be connected again (${err.code}): a socket connected to nothing stands in for it`);
    }
  } else {
    created = closedConnection(remote, socket);
    warn(`${what}: a connection cannot be restored: it comes back closed by its peer (reads end, writes fail with EPIPE)`);
  }
  placeEverywhere(remote, created, fds);
}

/** A datagram socket of the recorded kind with its options, connected to the recorded peer, bound first to its local address if free. */
function reconnect(remote: RemoteTask, socket: ConnectedSocket, fd: ExtensionFd, what: string, warn: (line: string) => void): number {
  return newSocket(remote, socket, (created) => {
    setOptions(remote, created, fd, warn);
    if (socket.family !== AF_UNIX) {
      try {
        remote.bind(created, socket.local);
      } catch (err) {
        if (!(err instanceof NativeError)) throw err;
        warn(`${what}: its local address cannot be bound again (${err.code}): it sends from another`);
      }
    } else if (socket.local.length > 2) {
      warn(`${what}: its own name is not bound again: replies sent to it do not reach it`);
    }
    remote.connect(created, socket.peer);
  });
}

/**
 * A socket of the recorded kind that reads as a connection closed by its peer: a TCP socket shut
 * down both ways (reads return 0, writes EPIPE); a Unix one, the end of a socket pair whose other
 * end is closed; for a datagram socket, one connected to nothing.
 */
function closedConnection(remote: RemoteTask, socket: ConnectedSocket): number {
  if (socket.family === AF_UNIX && socket.type !== SOCK_DGRAM) {
    const [end, other] = remote.socketpair(AF_UNIX, socket.type | O_CLOEXEC);
    remote.close(other);
    return end;
  }
  return newSocket(remote, socket, (created) => {
    if (socket.type !== SOCK_STREAM) return;
    try {
      remote.shutdown(created, SHUT_RDWR);
    } catch (err) {
      // Never connected, it answers ENOTCONN, and is shut down all the same.
      if (!(err instanceof NativeError && err.errno === constants.errno.ENOTCONN)) throw err;
    }
  });
}

/**
 * The recorded options, before the bind (SO_BINDTODEVICE and IP_FREEBIND decide what it may bind
 * to), with one warning naming those refused here: a device this machine lacks, SO_MARK without
 * CAP_NET_ADMIN.
 */
function setOptions(remote: RemoteTask, created: number, fd: ExtensionFd, warn: (line: string) => void): void {
  const refused: string[] = [];
  for (const { level, name, value } of fd.socketOptions ?? []) {
    const forceName = knownSocketOption(level, name)?.forceName;
    try {
      if (forceName !== undefined && value.length === 4) setBufferSize(remote, created, level, name, forceName, value.readInt32LE(0) / 2);
      else remote.setsockopt(created, level, name, value);
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      refused.push(`${socketOptionLabel(level, name)} (${err.code})`);
    }
  }
  if (refused.length > 0) warn(`fd ${fd.fd} (${fd.target}): socket option${refused.length === 1 ? '' : 's'} ${refused.join(', ')} not set again`);
}

/**
 * A buffer size as the program asked for it (getsockopt answered twice that): beyond the system's
 * maximum with the FORCE option where the restorer may (CAP_NET_ADMIN), else up to that maximum.
 */
function setBufferSize(remote: RemoteTask, fd: number, level: number, name: number, forceName: number, size: number): void {
  try {
    remote.setsockopt(fd, level, forceName, size);
  } catch (err) {
    if (!(err instanceof NativeError && err.errno === constants.errno.EPERM)) throw err;
    remote.setsockopt(fd, level, name, size);
  }
}

/**
 * The bind flags of a bound socket, SO_REUSEADDR for a listener: the dumped process's connections
 * may linger in TIME_WAIT on its port for a minute, which would refuse the bind of a listener
 * without it (most servers set it anyway), and a listener's connections take its flag into their
 * TIME_WAIT, where a later bind needs it too.
 */
function withListenerReuse(socket: BoundSocket): BindFlags {
  return { ...socket, reuseaddr: socket.listening && socket.family !== AF_UNIX };
}

/**
 * A socket of the same family and type that nothing will reach: a listener bound to a port the
 * kernel picks on the loopback address (a Unix one to an autobound abstract name), or a datagram
 * socket bound to nothing. With the socket's flags and options where they can be set (those
 * refused were named when the socket itself was made): a dump of the process records them, and
 * its restore, elsewhere or later, binds the program's own address again (SO_REUSEADDR).
 */
function standIn(remote: RemoteTask, socket: BoundSocket, fd: ExtensionFd): number {
  const idle = (created: number) => {
    if (!socket.listening) return;
    remote.bind(created, unusedAddress(socket.family));
    remote.listen(created, socket.backlog);
  };
  try {
    return newSocket(remote, socket, (created) => {
      setBindFlags(remote, created, withListenerReuse(socket));
      setOptions(remote, created, fd, () => undefined);
      idle(created);
    });
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    return newSocket(remote, socket, idle);
  }
}

/** Port 0 on the family's loopback address; for AF_UNIX the bare family, which autobinds. */
function unusedAddress(family: number): Buffer {
  if (family === AF_UNIX) return Buffer.from([AF_UNIX, 0]);
  if (family === AF_INET6) {
    const address = Buffer.alloc(28);
    address.writeUInt16LE(AF_INET6, 0);
    address[23] = 1; // ::1
    return address;
  }
  const address = Buffer.alloc(16);
  address.writeUInt16LE(AF_INET, 0);
  address.writeUInt32BE(0x7f00_0001, 4); // 127.0.0.1
  return address;
}

/** bind, after removing a stale socket file in the way (as a server does before it binds). */
function bindAgain(remote: RemoteTask, fd: number, socket: BoundSocket): void {
  try {
    remote.bind(fd, socket.address);
  } catch (err) {
    if (!(err instanceof NativeError && err.errno === constants.errno.EADDRINUSE && removeStaleSocketFile(remote, socket))) throw err;
    remote.bind(fd, socket.address);
  }
}

/** A Unix socket's path (null: abstract, or not Unix), and where the restorer finds it: as the stub sees it. */
function socketPath(remote: RemoteTask, socket: BoundSocket): { name: string; here: string } | null {
  const path = unixSocketPath(socket.address);
  if (path === null) return null;
  return { name: path, here: path.startsWith('/') ? `/proc/${remote.tid}/root${path}` : `/proc/${remote.tid}/cwd/${path}` };
}

/**
 * Removes the file of a Unix socket path that no socket is bound to any more (the dumped process
 * left it when it was killed): true if it did. A path some socket still holds (by its name in
 * /proc/net/unix), or that is not a socket, is left alone.
 */
function removeStaleSocketFile(remote: RemoteTask, socket: BoundSocket): boolean {
  const path = socketPath(remote, socket);
  if (!path) return false;
  try {
    if (!lstatSync(path.here).isSocket()) return false;
  } catch {
    return false;
  }
  // /proc/net/unix: one line per socket of our network namespace, its bound path last.
  if (readFileSync('/proc/net/unix', 'latin1').split('\n').some((line) => line.endsWith(` ${path.name}`))) return false;
  unlinkSync(path.here);
  return true;
}

/**
 * Gives the new socket file the dumped one's mode and owner (bind made it with the umask's), on
 * the file itself: opened without following a symbolic link (O_PATH), so that one swapped in
 * after the bind, in a directory others may write, is not followed to another file.
 */
function giveSocketFile(remote: RemoteTask, socket: BoundSocket, file: NonNullable<BoundSocket['file']>, fd: ExtensionFd, warn: (line: string) => void): void {
  const path = socketPath(remote, socket)!;
  let handle = -1;
  try {
    handle = openSync(path.here, O_PATH | fsConstants.O_NOFOLLOW);
    if (!fstatSync(handle).isSocket()) throw Object.assign(new Error('not a socket'), { code: 'ENOTSOCK' });
    chownSync(`/proc/self/fd/${handle}`, file.uid, file.gid);
    chmodSync(`/proc/self/fd/${handle}`, file.mode);
  } catch (err) {
    warn(`fd ${fd.fd} (${fd.target}): ${path.name} cannot get mode ${file.mode.toString(8)} and owner ${file.uid}:${file.gid} back (${(err as NodeJS.ErrnoException).code}): it keeps the restorer's`);
  } finally {
    if (handle >= 0) closeSync(handle);
  }
}
