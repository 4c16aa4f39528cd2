/**
 * Internal test helper: Express 4's body parsers, reproduced over Express 5's own. Express 4 is not
 * installed here (express 5 is the dev dependency), and what matters is how its parsers (body-parser
 * 1.x) leave a request they do not parse: each starts with `req.body = req.body || {}`, reads the
 * stream only when the request's type is its own, and marks a body it read with `req._body = true`
 * (its read.js). So an app with only `express.json()` hands a form POST on as `{}` over an unread
 * stream. Express 5's parsers leave `req.body` undefined instead, and mark nothing.
 */
import type { RequestHandler } from 'express';

/** `express4(express.json())`: Express 5's parser, with Express 4's `{}` and `_body`. */
export function express4(parser: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const marked = req as typeof req & { _body?: boolean };
    if (marked._body) return next();
    const unparsed = req.body || {};
    req.body = unparsed;
    parser(req, res, (error?: unknown) => {
      // Express 5's parser replaces the body only when it read one.
      if (req.body !== unparsed) marked._body = true;
      next(error);
    });
  };
}
