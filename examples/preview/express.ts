/**
 * An Express 5 app with mailroom's preview mounted at `/_mail`: every template with each of its
 * preview data sets, and every email the sandbox captured, in the browser at
 * http://localhost:3000/_mail/, in development only.
 *
 * The preview renders the templates with the options the app's `EmailService` is built with
 * (brand, your templates, layouts), so what it shows is what the app sends.
 */
import express from 'express';
import { type EmailServiceOptions, isProduction } from 'mailroom-js';
import { createPreviewHandler } from 'mailroom-js/preview';

export interface AppOptions {
  /** The options the app builds its `EmailService` with: the preview renders with the same ones. */
  mailOptions: EmailServiceOptions;
  /** The sandbox folder whose captured emails the preview lists. Default `MAILROOM_SANDBOX_DIR` or `.mailroom/outbox`. */
  outboxDir?: string;
  /** Reload the open preview page when a template or the outbox changes. Default true; tests turn it off. */
  watch?: boolean;
  /**
   * The names you open the app by, besides localhost (e.g. `['myapp.test']`): the preview refuses
   * any other `Host`, so that a page on a DNS-rebinding name cannot read the captured emails.
   */
  allowedHosts?: string[];
}

export function createExpressApp({
  mailOptions,
  outboxDir,
  watch,
  allowedHosts,
}: AppOptions): express.Express {
  const app = express();

  app.get('/', (_req, res) => {
    res.type('text').send('Your app. The mail preview is at /_mail/ outside production.\n');
  });

  // The preview shows every captured email (addresses, reset links) to whoever can reach it, so it
  // is for development only. createPreviewHandler itself throws under production's rules (unless
  // `force: true`): NODE_ENV=production, or a NODE_ENV mailroom does not know as development, test
  // or staging (live, prd). isProduction() is that same rule: without this guard, the app would not
  // even start in production.
  if (!isProduction()) {
    // Mounted at /_mail, it redirects /_mail to /_mail/ so that the page's relative links resolve.
    app.use(
      '/_mail',
      createPreviewHandler({ enabled: true, service: mailOptions, outboxDir, watch, allowedHosts }),
    );
  }

  return app;
}
