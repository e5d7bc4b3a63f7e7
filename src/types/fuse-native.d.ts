// The part of fuse-native's untyped API that src/fs.ts uses.
declare module 'fuse-native' {
  export default class Fuse {
    constructor(mountPoint: string, ops: object, options: object);
    _fuseOptions(): string;
    _makeHandlerArray(): unknown[];
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
  }
}
