// Hex fixtures of captured BGP messages: test/fixtures/bgp/<name>.hex, one
// message a line as '<label> <hex>', '#' lines are comments (how and when
// the capture was made).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { projectRoot } from '../../../control/paths.js';

export interface FixtureMessage {
  label: string;
  bytes: Buffer;
}

export function fixturePath(name: string): string {
  return join(projectRoot(), 'test', 'fixtures', 'bgp', `${name}.hex`);
}

export function readFixture(name: string): FixtureMessage[] {
  return readFileSync(fixturePath(name), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => {
      const [label, hex] = l.trim().split(/\s+/);
      if (label === undefined || hex === undefined || !/^([0-9a-f]{2})+$/.test(hex)) {
        throw new Error(`${name}.hex: bad line '${l}'`);
      }
      return { label, bytes: Buffer.from(hex, 'hex') };
    });
}

export function writeFixture(name: string, comment: string, messages: FixtureMessage[]): void {
  const head = comment
    .trim()
    .split('\n')
    .map((l) => `# ${l}`.trimEnd());
  const body = messages.map((m) => `${m.label} ${m.bytes.toString('hex')}`);
  writeFileSync(fixturePath(name), [...head, ...body, ''].join('\n'));
}

/** The fixture message with this label; throws naming the labels there are. */
export function byLabel(messages: FixtureMessage[], label: string): Buffer {
  const m = messages.find((x) => x.label === label);
  if (m === undefined) {
    throw new Error(`no message '${label}' (have: ${messages.map((x) => x.label).join(', ')})`);
  }
  return m.bytes;
}
