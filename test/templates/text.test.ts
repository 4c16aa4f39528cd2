/**
 * tidyText, which every rendered text part goes through: its fast paths (no trailing-space pass
 * when no line has one, runs of newlines found with indexOf) give exactly what the two regex
 * passes it replaced gave, on texts that hit each branch.
 */
import { describe, expect, it } from 'vitest';
import { tidyText } from '../../src/templates/text.js';

/** The rule as it was written before the fast paths. */
const reference = (text: string) =>
  text
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();

describe('tidyText', () => {
  const texts = [
    '',
    'plain',
    '\n\n\n',
    '\n\n\n\nstarts with blank lines',
    'ends with blank lines\n\n\n\n\n',
    'Acme\n\nConfirm\n\n\nHi Jane,\n\n\n\nThanks.\n\n\n© 2026 Acme\n\n',
    'two\n\nstays two',
    'trailing space \nand tab\t\nand both \t \n\n\n\nend',
    'blank line of spaces\n   \n   \n\nnext',
    'before CR \r\nbefore U+2028 \u2028before U+2029\t\u2029end',
    'spaces at the very end   ',
    'tab at the very end\t',
    ' \t leading blanks kept by the line rule, trimmed at the start\n\n\n',
    'a\n\n\nb\n\n\n\nc\n\n\n\n\nd',
    'no trailing blank, inner  spaces\tand tabs\nsecond line',
  ];

  it('gives what the two regex passes gave', () => {
    for (const text of texts) expect(tidyText(text), JSON.stringify(text)).toBe(reference(text));
  });

  it('collapses blank lines to one and drops trailing spaces', () => {
    expect(tidyText('Hi \n\n\n\nthere\t\n')).toBe('Hi\n\nthere');
  });
});
