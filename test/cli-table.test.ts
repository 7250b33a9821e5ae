import { describe, expect, it } from 'vitest';

import { renderTable } from '../control/cli/table.js';

describe('renderTable', () => {
  it('right-aligns numbers and keeps addresses left', () => {
    const lines = renderTable(
      ['vip', 'packets', 'share'],
      [
        ['192.0.2.200', '7', '12.5'],
        ['10.0.0.1', '1,234', '3'],
      ],
    );
    expect(lines).toEqual([
      'vip          packets  share',
      '-----------  -------  -----',
      '192.0.2.200        7   12.5',
      '10.0.0.1       1,234      3',
    ]);
  });

  it('pads columns to the header when it is wider, and leaves text columns ragged at the end', () => {
    expect(renderTable(['name', 'n'], [['a', '10']])).toEqual(['name   n', '----  --', 'a     10']);
  });
});
