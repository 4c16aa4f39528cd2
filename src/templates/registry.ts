import { TemplateError } from '../errors.js';
import { DEFAULT_LOCALE } from '../locale.js';
import type { FooterFragment, UnsubscribeLinks } from '../unsubscribe/footer.js';
import type { AppInfo } from './brand.js';
import { builtinAssets, builtinTemplates, builtinTemplatesDir } from './builtins.js';
import {
  type CompiledTemplate,
  compileSources,
  compileTemplate,
  type RenderContext,
  type RenderedEmail,
  renderFooterFragment,
  renderStylesheet,
} from './compile.js';
import { checkTemplateName, isTemplateHandle, type TemplateHandle } from './define.js';
import { builtinMessages, type MessageLayer, Translator } from './i18n.js';
import { precompiledSources } from './precompiled.js';

/** Options for a {@link TemplateRegistry}. */
export interface TemplateRegistryOptions {
  /** The brand every template sees as `it.app`. */
  app: AppInfo;
  /** Your templates; one with a built-in's name replaces it. */
  templates?: readonly TemplateHandle[];
  /** Extra layouts by name (each with `<%~ it.body %>` once); `default` replaces the built-in layout. */
  layouts?: Readonly<Record<string, string>>;
  /** Extra partials by name, used as `<%~ include('@name', { … }) %>`. */
  partials?: Readonly<Record<string, string>>;
  /** CSS inlined into every template (after the default layout's stylesheet, where that applies). */
  css?: string;
  /** Translations over the built-in catalogs (checked: see `EmailServiceOptions.messages`). */
  messages?: MessageLayer;
}

/**
 * The templates a service can send, compiled once on first use and cached: per message only the
 * render runs. Names are looked up here, never used as paths.
 */
export class TemplateRegistry {
  readonly #handles = new Map<string, TemplateHandle>();
  readonly #compiled = new Map<TemplateHandle, CompiledTemplate>();
  readonly #app: AppInfo;
  readonly #assets;
  #layoutCss: string | undefined;
  readonly #extraCss: string;
  readonly #messages: MessageLayer | undefined;
  #layers: readonly MessageLayer[] | undefined;

  constructor(options: TemplateRegistryOptions) {
    this.#app = options.app;
    const base = builtinAssets();
    this.#assets = {
      layouts: new Map([...base.layouts, ...Object.entries(options.layouts ?? {})]),
      partials: new Map([...base.partials, ...Object.entries(options.partials ?? {})]),
      css: base.css,
    };
    this.#extraCss = options.css ?? '';
    this.#messages = options.messages;
    for (const handle of [...builtinTemplates(), ...(options.templates ?? [])]) {
      if (!isTemplateHandle(handle))
        throw new TypeError('templates: each entry must come from defineTemplate()');
      this.#handles.set(handle.name, handle);
    }
  }

  /** Names of every template, built-in and yours, sorted. */
  names(): string[] {
    return [...this.#handles.keys()].sort();
  }

  /** The handle for a name; a {@link TemplateError} for an unknown or malformed name. */
  get(template: string | TemplateHandle): TemplateHandle {
    if (isTemplateHandle(template)) return template;
    const name = checkTemplateName(template);
    const handle = this.#handles.get(name);
    if (!handle)
      throw new TemplateError(name, `no template of that name (known: ${this.names().join(', ')})`);
    return handle;
  }

  /** The compiled template (compiling it on first use). */
  compiled(template: string | TemplateHandle): CompiledTemplate {
    const handle = this.get(template);
    let compiled = this.#compiled.get(handle);
    if (!compiled) {
      // A built-in as it shipped is compiled at build time: no juice, no html-to-text here.
      const precompiled = this.#extraCss ? undefined : precompiledSources(handle, this.#assets, this.#app);
      if (precompiled) {
        compiled = compileSources(handle, precompiled, this.#assets, this.#app);
      } else {
        this.#layoutCss ??= renderStylesheet(this.#assets.css, this.#app);
        const css = templateCss(handle, this.#layoutCss, this.#extraCss);
        compiled = compileTemplate(handle, this.#assets, this.#app, css);
      }
      this.#compiled.set(handle, compiled);
    }
    return compiled;
  }

  /**
   * Renders subject, HTML and text for one message. Checks the data against the template's fields.
   * `context` is what the template sees besides its data (`it.hasReplyTo`).
   */
  render(template: string | TemplateHandle, data: unknown, context?: RenderContext): RenderedEmail {
    // A context that names its catalogs (the service's does) is used as it is: no copy per render.
    const full = context?.messages ? context : { ...context, messages: this.messageLayers() };
    return this.compiled(template).render(data, full);
  }

  /** The catalogs a template's `t()` reads after its own: the service's, then the built-in ones. */
  messageLayers(): readonly MessageLayer[] {
    const builtin = builtinMessages(builtinTemplatesDir());
    if (this.#layers?.at(-1) !== builtin) {
      this.#layers = this.#messages ? [this.#messages, builtin] : [builtin];
    }
    return this.#layers;
  }

  /**
   * The `@unsubscribe` partial (the built-in one, or yours from `partials`) rendered alone with
   * `links` in `locale` (canonical BCP 47, default `en`): what the service adds to product and
   * marketing mail whose HTML or text lacks the links.
   */
  unsubscribeFooter(links: UnsubscribeLinks, locale: string = DEFAULT_LOCALE): FooterFragment {
    const partial = this.#assets.partials.get('unsubscribe') as string;
    return renderFooterFragment(partial, this.#app, links, new Translator(locale, this.messageLayers()));
  }

  /** Compiles every template now, so a broken one fails at start-up rather than on first send. */
  compileAll(): void {
    for (const name of this.names()) this.compiled(name);
  }
}

/** The built-in stylesheet belongs to the default layout; `css` from options applies to all. */
export function templateCss(handle: TemplateHandle, layoutCss: string, extraCss: string): string {
  return [handle.source.layout === 'default' ? layoutCss : '', extraCss].join('\n');
}
