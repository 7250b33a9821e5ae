// The option format IPv4 and TCP share: kind 0 ends the list, kind 1 is a one-byte NOP, and
// every other option is kind, total length, data.

export interface KindLengthOption {
  readonly kind: number;
  /** Offset of the kind byte within the options area. */
  readonly offset: number;
  readonly length: number;
  readonly data: Buffer;
  /** Length byte missing, below 2 or running past the area: the rest is unparseable. */
  readonly malformed?: true;
}

export interface ParsedOptions {
  readonly options: readonly KindLengthOption[];
  /** Bytes after an end-of-list option (offset, length), if any. */
  readonly padding?: readonly [number, number];
}

const EOL = 0;
const NOP = 1;

export function parseKindLengthOptions(area: Buffer): ParsedOptions {
  const options: KindLengthOption[] = [];
  let pos = 0;
  while (pos < area.length) {
    const kind = area[pos] ?? EOL;
    if (kind === EOL || kind === NOP) {
      options.push({ kind, offset: pos, length: 1, data: area.subarray(pos + 1, pos + 1) });
      pos += 1;
      if (kind === EOL) {
        return pos < area.length ? { options, padding: [pos, area.length - pos] } : { options };
      }
      continue;
    }
    const length = area[pos + 1];
    if (length === undefined || length < 2 || pos + length > area.length) {
      const rest = area.subarray(pos);
      options.push({ kind, offset: pos, length: rest.length, data: rest, malformed: true });
      break;
    }
    options.push({ kind, offset: pos, length, data: area.subarray(pos + 2, pos + length) });
    pos += length;
  }
  return { options };
}
