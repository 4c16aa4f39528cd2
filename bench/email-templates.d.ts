/** The little of email-templates (untyped CommonJS) that the render bench uses. */
declare module 'email-templates' {
  export default class Email {
    constructor(options?: Record<string, unknown>);
    renderAll(template: string, locals?: object): Promise<{ subject?: string; html?: string; text?: string }>;
  }
}
