/**
 * The sign-up route of examples/express, with mail queued on Kafka: the request returns as soon
 * as the brokers acknowledged the email (every in-sync replica has it), and never waits on a mail
 * provider. A worker (worker.ts) renders and sends it.
 *
 * The service is passed in: `createQueuedMail()` from mail.ts gives the queued one. The route code
 * is the same as for a service that sends directly; only the answer differs (202, not 201: the
 * email is on its way, not delivered).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler } from 'express';
import { type EmailService, isMailroomError, isMessageError } from 'mailroom-js';

interface User {
  email: string;
  name: string;
  verificationToken: string;
  /** Names the link (never the token itself, which must not travel in keys and logs). */
  verificationId: string;
}

export interface AppOptions {
  mail: EmailService;
  /** Where the links in the emails point. Default `http://localhost:3000`. */
  baseUrl?: string;
}

export function createApp({ mail, baseUrl = 'http://localhost:3000' }: AppOptions): express.Express {
  const users = new Map<string, User>(); // by lower-cased email; a real app has a database
  const app = express();
  app.use(express.json());

  app.post('/signup', async (req, res) => {
    const email = stringField(req.body?.email).trim();
    const name = stringField(req.body?.name).trim();
    if (name === '' || name.length > 100 || /[\u0000-\u001f\u007f]/.test(name)) {
      res.status(400).json({ error: 'name must be 1 to 100 characters on one line', field: 'name' });
      return;
    }
    const key = email.toLowerCase();
    if (users.has(key)) {
      res.status(409).json({ error: 'an account with this email already exists', field: 'email' });
      return;
    }
    const user: User = {
      email,
      name,
      verificationToken: randomBytes(32).toString('base64url'),
      verificationId: randomUUID(),
    };
    users.set(key, user);
    try {
      // Queued or not, mailroom checks the address, the template's data and the headers here: a
      // bad address throws a MessageError before anything is published.
      const result = await mail.sendVerificationEmail({
        to: email,
        username: name,
        verificationUrl: `${baseUrl}/verify?token=${user.verificationToken}`,
        // One key per verification email (account and link): the Message-ID derives from it, and
        // the worker skips a key it has already sent, so a record Kafka delivers twice is mailed
        // once. A "send the link again" button makes a new link, so its email gets a new key.
        idempotencyKey: `verify:${key}:${user.verificationId}`,
      });
      // `queued` says where the email landed: { id, idempotencyKey, topic, partition, offset }.
      res.status(202).json({ queued: result.queued });
    } catch (err) {
      users.delete(key); // they never got the link: let them sign up again
      throw err;
    }
  });

  // Express 5 sends errors thrown by async handlers here.
  const onError: ErrorRequestHandler = (err, _req, res, next) => {
    if (res.headersSent) return next(err);
    if (isMessageError(err)) {
      // mailroom names the message's field (`to[0]`); the client knows it as `email`.
      const field = err.field.startsWith('to') ? 'email' : err.field;
      res.status(400).json({ error: err.message.replace(err.field, field), field });
    } else if (err?.type === 'entity.parse.failed') {
      res.status(400).json({ error: 'the request body is not valid JSON' });
    } else if (isMailroomError(err)) {
      next(err); // a TemplateError or ConfigError is a bug to fix, not a moment to wait: a 500
    } else {
      // Kafka could not take the email (brokers unreachable, not enough in-sync replicas): the
      // producer's own error, not a mailroom one. Nothing was queued, so the user may try again.
      console.error(`signup: could not queue the verification email: ${err?.message ?? err}`);
      res.status(503).json({ error: 'please try again in a moment' });
    }
  };
  app.use(onError);
  return app;
}

/** A request field as a string; anything else (missing, a number, an object) becomes ''. */
function stringField(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
