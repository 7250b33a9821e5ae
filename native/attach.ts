// Attaching programs to interfaces of the calling thread's network namespace
// (see netns.ts to reach another one).
import { addon } from './addon.js';
import { XdpFlag } from './constants.js';
import type { BpfProgram } from './program.js';

/** native: in the driver (veth supports it); generic: in the stack, works everywhere. */
export type XdpMode = 'native' | 'generic';

const modeFlag = (mode: XdpMode): number => (mode === 'native' ? XdpFlag.drvMode : XdpFlag.skbMode);

export interface XdpAttachOptions {
  /** Fail instead of replacing a program someone else attached. */
  noReplace?: boolean;
  /** Replace exactly this program, atomically (no gap without a program). */
  replacing?: BpfProgram;
}

export interface XdpState {
  /** 0 none, 1 native, 2 generic, 3 offload, 4 several. */
  mode: number;
  progId: number;
  nativeProgId: number;
  genericProgId: number;
}

export const xdp = {
  attach(ifindex: number, prog: BpfProgram, mode: XdpMode, options: XdpAttachOptions = {}): void {
    const flags = modeFlag(mode) | (options.noReplace ? XdpFlag.updateIfNoExist : 0);
    addon().xdpAttach(ifindex, prog.fd, flags, options.replacing?.fd);
  },

  detach(ifindex: number, mode: XdpMode): void {
    addon().xdpDetach(ifindex, modeFlag(mode));
  },

  query(ifindex: number): XdpState {
    const q = addon().xdpQuery(ifindex);
    return {
      mode: q.mode,
      progId: q.progId,
      nativeProgId: q.driverProgId,
      genericProgId: q.genericProgId,
    };
  },
};

export type TcDirection = 'ingress' | 'egress';

export interface TcFilter {
  ifindex: number;
  direction: TcDirection;
  handle: number;
  priority: number;
}

export const tc = {
  /** Attaches under clsact (created when missing); same handle+priority replaces. */
  attach(
    ifindex: number,
    direction: TcDirection,
    prog: BpfProgram,
    where: { handle?: number; priority?: number } = {},
  ): TcFilter {
    const r = addon().tcAttach(ifindex, direction, prog.fd, where.handle ?? 1, where.priority ?? 1);
    return { ifindex, direction, handle: r.handle, priority: r.priority };
  },

  /** False when no such filter was there. */
  detach(filter: TcFilter): boolean {
    return addon().tcDetach(filter.ifindex, filter.direction, filter.handle, filter.priority);
  },

  /** The attached program's id, 0 when none. */
  query(filter: TcFilter): number {
    return addon().tcQuery(filter.ifindex, filter.direction, filter.handle, filter.priority);
  },

  /** Removes the clsact qdisc and every filter on it. */
  removeClsact(ifindex: number): boolean {
    return addon().tcRemoveClsact(ifindex);
  },
};

export function ifIndex(name: string): number {
  return addon().ifIndex(name);
}
