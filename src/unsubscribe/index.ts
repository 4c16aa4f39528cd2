/**
 * `mailroom-js/unsubscribe`: one-click unsubscribe (RFC 8058). Signed tokens for the
 * `List-Unsubscribe` URL the service puts on `product` and `marketing` mail, and the node:http
 * handler that verifies them and records the opt-out in a `PreferenceStore`.
 */

export type { UnsubscribeLinks } from './footer.js';
export {
  createUnsubscribeHandler,
  type UnsubscribeAppLook,
  type UnsubscribeHandler,
  type UnsubscribeHandlerOptions,
} from './handler.js';
export type { UnsubscribeOptions } from './headers.js';
export {
  DEFAULT_MAX_AGE_DAYS,
  MIN_SECRET_BYTES,
  signUnsubscribeToken,
  type UnsubscribeSecret,
  type UnsubscribeTokenFailure,
  type UnsubscribeTokenPayload,
  type UnsubscribeTokenResult,
  type ValidUnsubscribeToken,
  type VerifyUnsubscribeTokenOptions,
  verifyUnsubscribeToken,
} from './token.js';
