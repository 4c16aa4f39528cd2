/**
 * A proofing desk for pre-production: every email the app sends is held until someone reads it in
 * the preview and releases it through the real SMTP server (or Mailgun) configured in the
 * environment, staging rules included. `createDesk(env)` is what an app's pre-production entry
 * point writes; `server.ts` runs it.
 */
import { configFromEnv, EmailService, type HoldTransport, isHoldTransport } from 'mailroom-js';
import { createPreviewHandler, type PreviewHandler } from 'mailroom-js/preview';

export interface Desk {
  /** The app's mail: every send is held. */
  mail: EmailService;
  /** The hold, for scripts: `hold.list()`, `hold.release(ids)`, `hold.discard(ids)`. */
  hold: HoldTransport;
  /** The preview with its Release, Release to…, Discard and Send a test email buttons. */
  preview: PreviewHandler;
}

/**
 * The desk from the environment: `MAILROOM_HOLD=true` with a transport that delivers
 * (`SMTP_HOST` …), `MAILROOM_PREVIEW_TOKEN` when the desk is opened from other machines, whose
 * names are `allowedHosts`. Throws a `ConfigError` naming the variable that is wrong or missing.
 */
export function createDesk(
  env: Record<string, string | undefined> = process.env,
  allowedHosts: readonly string[] = [],
): Desk {
  const options = configFromEnv(env);
  if (!isHoldTransport(options.transport)) {
    throw new Error(
      'the proofing desk holds mail: set MAILROOM_HOLD=true beside SMTP_HOST (or MAILGUN_API_KEY)',
    );
  }
  const token = env.MAILROOM_PREVIEW_TOKEN;
  return {
    mail: new EmailService(options),
    hold: options.transport,
    preview: createPreviewHandler({
      enabled: true,
      // Pre-production often runs with NODE_ENV=production; the desk is meant to be there.
      force: true,
      service: options,
      allowedHosts,
      ...(token ? { token } : {}),
    }),
  };
}
