/** The colours of the built-in layout. */
export interface Palette {
  /** Buttons and links. Default `#007BFF`. */
  readonly primary: string;
  /** Body text. Default `#343A40`. */
  readonly text: string;
  /** Secondary text: footer, hints. Default `#6C757D`. */
  readonly muted: string;
  /** Page background. Default `#F8F9FA`. */
  readonly background: string;
  /** Default `#28A745`. */
  readonly success: string;
  /** Default `#DC3545`. */
  readonly danger: string;
}

/** Brand options: how the built-in layout looks. */
export interface BrandOptions {
  /** Logo shown in the header instead of the app's name (an https URL; hosted images only). */
  logoUrl?: string;
  /** The app's home page, linked from the header and footer. */
  url?: string;
  /** Overrides of the default palette. */
  colors?: Partial<Palette>;
}

/** What every template sees as `it.app`. */
export interface AppInfo {
  readonly name: string;
  readonly logoUrl: string | undefined;
  readonly url: string | undefined;
  readonly colors: Palette;
  readonly senderName: string;
  readonly senderAddress: string;
  readonly year: number;
}

export const DEFAULT_PALETTE: Palette = Object.freeze({
  primary: '#007BFF',
  text: '#343A40',
  muted: '#6C757D',
  background: '#F8F9FA',
  success: '#28A745',
  danger: '#DC3545',
});
