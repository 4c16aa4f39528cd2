/**
 * An Express 5 app that sends mailroom's built-in emails from real sign-up, verification and
 * password-reset routes. The service is passed in, so tests give it a memory transport
 * (`createTestMailer()`) and `server.ts` gives it the one from the environment.
 *
 * Users live in a Map to keep the example short; a real app keeps them (and hashes of the
 * tokens, never the tokens) in its database.
 */
import { randomBytes } from 'node:crypto';
import express, { type ErrorRequestHandler } from 'express';
import { type EmailService, isEmailError, isMessageError, parseAddress } from 'mailroom-js';

interface User {
  email: string;
  name: string;
  verified: boolean;
  verificationToken?: string;
  resetToken?: { value: string; expiresAt: number };
}

export interface AppOptions {
  mail: EmailService;
  /** Where the links in the emails point. Default `http://localhost:3000`. */
  baseUrl?: string;
}

const RESET_MINUTES = 30;
const newToken = () => randomBytes(32).toString('base64url');

export function createApp({ mail, baseUrl = 'http://localhost:3000' }: AppOptions): express.Express {
  const users = new Map<string, User>(); // by lower-cased email
  const app = express();
  app.use(express.json());

  app.post('/signup', async (req, res) => {
    // parseAddress is mailroom's own address check: a bad address throws a MessageError naming the
    // field we give it ('email'), which the error handler below turns into a 400. Checking here,
    // not only when sending, means no user is stored for an address we could never mail.
    const email = parseAddress(stringField(req.body?.email), 'email').address;
    const name = stringField(req.body?.name).trim();
    // The name goes into subjects ("Welcome to Acme, Jane!"), where line breaks are refused.
    if (name === '' || name.length > 100 || /[\u0000-\u001f\u007f]/.test(name)) {
      res.status(400).json({ error: 'name must be 1 to 100 characters on one line', field: 'name' });
      return;
    }
    const key = email.toLowerCase();
    if (users.has(key)) {
      res.status(409).json({ error: 'an account with this email already exists', field: 'email' });
      return;
    }

    const user: User = { email, name, verified: false, verificationToken: newToken() };
    users.set(key, user);
    try {
      await mail.sendVerificationEmail({
        to: email,
        username: name,
        verificationUrl: `${baseUrl}/verify?token=${user.verificationToken}`,
      });
    } catch (err) {
      users.delete(key); // they never got the link: let them sign up again
      throw err;
    }
    res.status(201).json({ email, verified: false });
  });

  app.get('/verify', async (req, res) => {
    const token = req.query.token;
    const user = [...users.values()].find(
      (u) => u.verificationToken !== undefined && u.verificationToken === token,
    );
    if (!user) {
      res.status(400).json({ error: 'this link is invalid or was already used', field: 'token' });
      return;
    }
    user.verified = true;
    delete user.verificationToken;
    try {
      await mail.sendWelcomeEmail({ to: user.email, username: user.name, actionUrl: `${baseUrl}/` });
    } catch (err) {
      // The account is verified either way; a welcome email that could not go out is no reason
      // to tell the user their verification failed.
      if (!isEmailError(err)) throw err;
      console.warn(`welcome email not sent: ${err.message}`);
    }
    res.json({ email: user.email, verified: true });
  });

  app.post('/forgot-password', async (req, res) => {
    const email = parseAddress(stringField(req.body?.email), 'email').address;
    const user = users.get(email.toLowerCase());
    if (user) {
      user.resetToken = { value: newToken(), expiresAt: Date.now() + RESET_MINUTES * 60_000 };
      try {
        await mail.sendPasswordResetEmail({
          to: user.email,
          username: user.name,
          resetUrl: `${baseUrl}/reset-password?token=${user.resetToken.value}`,
          expiresInMinutes: RESET_MINUTES,
        });
      } catch (err) {
        // A 503 here would only ever happen for real accounts, and so tell who has one. Log it
        // instead. (A production app would queue the send, so response time tells nothing either.)
        if (!isEmailError(err)) throw err;
        console.warn(`password reset email not sent: ${err.message}`);
      }
    }
    // The same answer whether or not the account exists: no account enumeration.
    res.status(202).json({ message: 'If an account exists for this address, we sent it a reset link.' });
  });

  // Express 5 sends errors thrown by async handlers here.
  const onError: ErrorRequestHandler = (err, _req, res, next) => {
    if (res.headersSent) return next(err);
    if (isMessageError(err)) {
      // Invalid input that reached mailroom: the field says which (e.g. 'email').
      res.status(400).json({ error: err.message, field: err.field });
    } else if (isEmailError(err)) {
      // The mail provider failed; `retryable` says whether trying later may help.
      res
        .status(503)
        .json({ error: 'email could not be sent, please try again later', retryable: err.retryable });
    } else if (err?.type === 'entity.parse.failed') {
      res.status(400).json({ error: 'the request body is not valid JSON' });
    } else {
      next(err);
    }
  };
  app.use(onError);
  return app;
}

/** A request field as a string; anything else (missing, a number, an object) becomes ''. */
function stringField(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
