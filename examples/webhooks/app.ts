/**
 * An Express 5 app that learns from Mailgun which addresses bounced, and stops mailing them:
 * the webhook feeds the suppression list, the newsletter route is held back for suppressed
 * addresses, and the password reset (category `security`) never is. Two admin routes show and
 * lift suppressions.
 *
 * The store is in memory to keep the example short; a real app implements `SuppressionStore` on
 * its database, so that suppressions survive a restart and every instance sees them.
 */
import express from 'express';
import { type EmailService, type SuppressionStore, suppressFromEvents } from 'mailroom-js';
import { createWebhookHandler } from 'mailroom-js/webhooks';

export interface AppOptions {
  /** A service built with `suppressions` set to the same store. */
  mail: EmailService;
  suppressions: SuppressionStore;
  /** Mailgun's HTTP webhook signing key. */
  mailgunSigningKey: string;
}

export function createApp({ mail, suppressions, mailgunSigningKey }: AppOptions): express.Express {
  const app = express();
  // Before express.json(): the handler verifies the body it reads itself.
  app.post(
    '/hooks/mailgun',
    createWebhookHandler({
      provider: 'mailgun',
      signingKey: mailgunSigningKey,
      onEvent: suppressFromEvents(suppressions),
    }),
  );
  app.use(express.json());

  app.post('/newsletter', async (req, res) => {
    const result = await mail.send({
      to: String(req.body?.to),
      subject: 'What is new at Acme',
      text: 'Three things we shipped this month.',
      category: 'product',
    });
    res.json({ sentTo: result.accepted, suppressed: result.suppressed ?? [] });
  });

  app.post('/forgot-password', async (req, res) => {
    await mail.sendPasswordResetEmail({
      to: String(req.body?.email),
      username: 'there',
      resetUrl: 'https://acme.example/reset?token=…',
      expiresInMinutes: 30,
      category: 'security',
    });
    res.status(202).json({ sent: true });
  });

  app.get('/admin/suppressions', async (_req, res) => {
    res.json(await suppressions.list());
  });
  app.delete('/admin/suppressions/:address', async (req, res) => {
    res.json({ lifted: await suppressions.lift(req.params.address) });
  });
  return app;
}
