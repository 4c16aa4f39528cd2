/** checkBrand: each pair the built-in layout draws below 4.5:1 is a warning naming the option. */
import { describe, expect, it } from 'vitest';
import { checkBrand } from '../../src/preview/brand-check.js';
import { EmailService } from '../../src/service.js';
import type { BrandOptions } from '../../src/templates/brand.js';
import { memoryTransport } from '../../src/transports/memory.js';

function app(brand: BrandOptions) {
  return new EmailService({ transport: memoryTransport(), from: 'Acme <a@acme.example>', brand }).app;
}

describe('checkBrand', () => {
  it('warns about yellow links on the white card, with both colours and the ratio', () => {
    const report = checkBrand(app({ colors: { primary: '#FFC107' } }));
    expect(report).toMatchObject({ errors: 0, warnings: 1, infos: 0 });
    expect(report.findings).toEqual([
      {
        check: 'contrast',
        severity: 'warning',
        message:
          'brand.colors.primary #FFC107 on brand.colors.surface #FFFFFF: 1.63:1, below the 4.5:1 WCAG AA asks of text',
        where: 'links',
      },
    ]);
  });

  it('names the dark option, and where a carried-over primary came from', () => {
    const report = checkBrand(app({ colors: { primary: '#0B6E4F', muted: '#999999' } }));
    expect(report.findings.map((f) => `${f.message} (${f.where})`)).toEqual([
      'brand.colors.muted #999999 on brand.colors.surface #FFFFFF: 2.84:1, below the 4.5:1 WCAG AA asks of text (hints and detail labels)',
      'brand.colors.muted #999999 on brand.colors.background #F8F9FA: 2.70:1, below the 4.5:1 WCAG AA asks of text (the footer)',
      'brand.darkColors.primary (your brand.colors.primary) #0B6E4F on brand.darkColors.surface #1B1E22: 2.67:1, below the 4.5:1 WCAG AA asks of text (links in dark mode)',
    ]);
  });

  it('warns about a button whose fill no label reads on, once for a colour both palettes draw', () => {
    // Mid-grey: white is 4.29:1, the dark ink 4.33:1.
    const report = checkBrand(app({ colors: { danger: '#7A7A7A' } }));
    expect(report.findings.map((f) => `${f.message} (${f.where})`)).toEqual([
      'brand.colors.danger #7A7A7A behind its label #111315: 4.33:1, below the 4.5:1 WCAG AA asks of text (danger buttons)',
    ]);
  });

  it('refuses what is not an app', () => {
    expect(() => checkBrand({} as never)).toThrow(TypeError);
    expect(() => checkBrand(undefined as never)).toThrow(/EmailService’s app/);
  });
});
