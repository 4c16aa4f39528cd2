/**
 * Two providers sharing the load: Postmark and SendGrid in turn, each taking over when the other
 * cannot deliver. `configFromEnv()` builds one transport, so an app that wants two reads the
 * variables itself:
 *
 *   POSTMARK_SERVER_TOKEN, SENDGRID_API_KEY          required
 *   SENDER_ADDRESS                                   required: a sender both providers accept
 *   POSTMARK_BASE_URL, SENDGRID_BASE_URL             optional (a proxy)
 *
 * Each email goes through one provider; the next email through the other. A provider that fails
 * for a moment (429, 5xx) hands that email to the other one within the same attempt; one whose
 * key is wrong sits out a minute while the other carries everything.
 */
import {
  ConfigError,
  EmailService,
  postmarkTransport,
  roundRobinTransport,
  sendgridTransport,
} from 'mailroom-js';

type Env = Readonly<Record<string, string | undefined>>;

export function createSpreadMailer(env: Env = process.env): EmailService {
  const get = (name: string) => env[name]?.trim() || undefined;
  const required = (name: string) => {
    const value = get(name);
    if (value === undefined) throw new ConfigError(name, 'is required');
    return value;
  };
  const postmarkUrl = get('POSTMARK_BASE_URL');
  const sendgridUrl = get('SENDGRID_BASE_URL');
  return new EmailService({
    from: required('SENDER_ADDRESS'),
    appName: get('APP_NAME') ?? 'Acme',
    transport: roundRobinTransport(
      [
        postmarkTransport({
          serverToken: required('POSTMARK_SERVER_TOKEN'),
          ...(postmarkUrl === undefined ? {} : { baseUrl: postmarkUrl }),
        }),
        sendgridTransport({
          apiKey: required('SENDGRID_API_KEY'),
          ...(sendgridUrl === undefined ? {} : { baseUrl: sendgridUrl }),
        }),
      ],
      { cooldownMs: 60_000 },
    ),
    retry: { maxAttempts: 3, baseDelayMs: 200 },
  });
}
