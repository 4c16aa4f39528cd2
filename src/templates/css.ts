/**
 * Internal: the CSS step of compiling a template. juice inlines every rule that matches an element
 * of the source, once, at compile time. Whatever it cannot place on an element there is kept in a
 * `<style>` block in the head instead of being dropped: rules for classes chosen by data
 * (`class="alert <%= it.level %>"`, `<% if (…) { %>class="urgent"<% } %>`), selectors on
 * attributes a mail client adds (`[data-ogsc] …`), pseudo-classes (`:hover`), and at-rules
 * (`@media`, `@font-face`, `@supports`, `@keyframes`). Rules that were inlined are not repeated.
 */
import { loadJuice } from '../lazy-deps.js';

const STYLE_END = /<\/style/i;
const HEAD_END = /<\/head\s*>/i;
const BODY_START = /<body\b[^>]*>/i;

/** Inlines `css` (and the document's own `<style>` blocks) into `html`; keeps the rest in the head. */
export function inlineCss(html: string, css: string): string {
  if (!css.trim()) return inline(html);
  // A `<style>` that juice reads like the document's own, so it can take out only what it inlined
  // (`removeInlinedSelectors`); `extraCss` would drop every rule that matched nothing.
  return inline(placeInHead(html, `<style>${css}</style>`));
}

/** A problem with a stylesheet that would break out of its `<style>` block, or undefined. */
export function cssProblem(css: string): string | undefined {
  return STYLE_END.test(css) ? 'CSS must not contain "</style"' : undefined;
}

function inline(html: string): string {
  return loadJuice()(html, {
    removeStyleTags: false,
    removeInlinedSelectors: true,
    preserveMediaQueries: true,
    preserveFontFaces: true,
    preserveKeyFrames: true,
    preservePseudos: true,
    preserveImportant: true,
    applyWidthAttributes: true,
  });
}

/** At the end of the head (after the document's own styles, as the cascade had it), else at the top. */
function placeInHead(html: string, block: string): string {
  if (HEAD_END.test(html)) return html.replace(HEAD_END, (end) => `${block}${end}`);
  if (BODY_START.test(html)) return html.replace(BODY_START, (start) => `<head>${block}</head>${start}`);
  return `${block}${html}`;
}
