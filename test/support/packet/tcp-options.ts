import { checkUint, toBuffer } from './bytes.js';
import type { TcpOption } from './layers.js';

export const TCP_OPTION_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'eol'],
  [1, 'nop'],
  [2, 'mss'],
  [3, 'wscale'],
  [4, 'sackOk'],
  [5, 'sack'],
  [8, 'timestamp'],
]);

function u32(value: number, name: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(checkUint(name, value, 32));
  return b;
}

function encodeOne(option: TcpOption): Buffer {
  switch (option.kind) {
    case 'eol':
      return Buffer.from([0]);
    case 'nop':
      return Buffer.from([1]);
    case 'mss': {
      const b = Buffer.from([2, 4, 0, 0]);
      b.writeUInt16BE(checkUint('mss', option.value, 16), 2);
      return b;
    }
    case 'wscale':
      return Buffer.from([3, 3, checkUint('wscale', option.shift, 8)]);
    case 'sackOk':
      return Buffer.from([4, 2]);
    case 'sack': {
      const edges = option.blocks.flatMap(([l, r]) => [u32(l, 'sack left'), u32(r, 'sack right')]);
      return Buffer.concat([Buffer.from([5, 2 + 8 * option.blocks.length]), ...edges]);
    }
    case 'timestamp':
      return Buffer.concat([
        Buffer.from([8, 10]),
        u32(option.value, 'timestamp'),
        u32(option.echo, 'timestamp echo'),
      ]);
    case 'raw':
      return toBuffer(option.bytes);
  }
}

/** The options area, padded to a multiple of 4 bytes with `pad` (EOL = 0, NOP = 1). */
export function encodeTcpOptions(options: readonly TcpOption[], pad: 'eol' | 'nop'): Buffer {
  const body = Buffer.concat(options.map(encodeOne));
  const padLength = (4 - (body.length % 4)) % 4;
  return Buffer.concat([body, Buffer.alloc(padLength, pad === 'eol' ? 0 : 1)]);
}
