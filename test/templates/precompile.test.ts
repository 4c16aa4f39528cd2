/**
 * The build step that precompiles the built-in emails (src/templates/precompile.ts): brand values
 * become eta tags that read the brand at render time, and a stylesheet that does more with a brand
 * value than print it fails the build instead of shipping wrong output. That the precompiled form
 * renders byte for byte like compiling from source is checked on the build, in
 * test/package/precompiled.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_PALETTE } from '../../src/templates/brand.js';
import { builtinAssets, builtinTemplates } from '../../src/templates/builtins.js';
import type { TemplateAssets } from '../../src/templates/compile.js';
import { precompileBuiltins } from '../../src/templates/precompile.js';

const withCss = (css: string): TemplateAssets => ({ ...builtinAssets(), css });

describe('precompiling the built-ins', () => {
  it('leaves every brand colour the stylesheet prints as an eta tag, never a colour of the default palette', () => {
    const result = precompileBuiltins(builtinTemplates(), builtinAssets());
    expect(Object.keys(result.templates).sort()).toEqual(
      builtinTemplates()
        .map((h) => h.name)
        .sort(),
    );
    expect(result.brandPaths).toContain('colors.primary');
    for (const { html } of Object.values(result.templates)) {
      expect(html).toContain('style="');
      // Every email reads a brand colour; which one depends on its button (primary, danger, warning).
      expect(html).toMatch(/<%= it\.app\.colors\.(primary|danger|warning) %>/);
      // White is the button label's own colour (on the brand's primary), not a brand value.
      for (const colour of Object.values(DEFAULT_PALETTE).filter((c) => c !== '#FFFFFF'))
        expect(html).not.toContain(colour);
    }
  });

  it.each([
    [
      'a condition on a brand value',
      '<% if (it.app.logoUrl) { %>.logo { width: 36px; }<% } %>',
      /more with a brand value/,
    ],
    [
      'arithmetic on a brand value',
      '.x { width: <%= it.app.year - 2000 %>px; }',
      /computes with it\.app\.year/,
    ],
    [
      'a method call on a brand value',
      '.x { color: <%= it.app.colors.primary.toLowerCase() %>; }',
      /it\.app\.colors\.primary/,
    ],
    [
      'a test of which keys the brand has',
      "<% if ('logoUrl' in it.app) { %>.x { color: red; }<% } %>",
      /tests "logoUrl"/,
    ],
    // Printed where HTML escaping differs from inlining's: the sample named 'Ada & "Co" <Mail>' shows it.
    [
      'a brand name printed into a kept rule',
      '.x::after { content: "<%= it.app.name %>"; }',
      /differs from compiling from source/,
    ],
  ])('fails the build for a stylesheet with %s', (_, css, message) => {
    expect(() => precompileBuiltins(builtinTemplates(), withCss(`${builtinAssets().css}\n${css}`))).toThrow(
      message,
    );
  });
});
