/**
 * Internal: places a template's body and preheader into its layout, before partials and CSS.
 */

const SLOT = /<%~\s*it\.(body|preheader)\s*%>/g;

/**
 * The layout with the body in `<%~ it.body %>` and the preheader in `<%~ it.preheader %>`.
 * Returns a problem instead when the layout has nowhere to put either: a body or a preheader
 * that would otherwise be dropped without a word.
 */
export function composeLayout(
  layoutName: string,
  layout: string,
  body: string,
  preheader: string | undefined,
): { html: string } | { problem: string } {
  const slots = [...layout.matchAll(SLOT)].map((match) => match[1]);
  const bodySlots = slots.filter((slot) => slot === 'body').length;
  if (bodySlots !== 1) {
    return { problem: `layout "${layoutName}" must contain <%~ it.body %> once (found ${bodySlots})` };
  }
  if (preheader && !slots.includes('preheader')) {
    return {
      problem: `has a preheader, but layout "${layoutName}" has no <%~ it.preheader %> to show it in`,
    };
  }
  // One pass over the layout only: a body that mentions `it.preheader` is left to eta.
  const html = layout.replace(SLOT, (_, slot: string) => (slot === 'body' ? body : (preheader ?? '')));
  return { html };
}
