/**
 * A Fastify 5 app with mailroom's preview mounted at `/_mail`, with no plugin: the preview is a
 * plain node:http handler, so the routes hand it Node's own request and response.
 *
 * Fastify passes full URLs, so the handler is told where it is mounted (`basePath`).
 * `await app.close()` stops the preview's file watching too.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isProduction } from 'mailroom-js';
import { createPreviewHandler } from 'mailroom-js/preview';
import type { AppOptions } from './express.js';

const MOUNT = '/_mail';

export function createFastifyApp({
  mailOptions,
  outboxDir,
  watch,
  allowedHosts,
}: AppOptions): FastifyInstance {
  const app = Fastify();

  app.get('/', async (_request, reply) => {
    reply.type('text/plain; charset=utf-8');
    return `Your app. The mail preview is at ${MOUNT}/ outside production.\n`;
  });

  // Development only: see express.ts (createPreviewHandler throws under production's rules).
  if (!isProduction()) {
    const preview = createPreviewHandler({
      enabled: true,
      service: mailOptions,
      outboxDir,
      watch,
      allowedHosts,
      basePath: MOUNT,
    });
    const serve = (request: FastifyRequest, reply: FastifyReply) => {
      // From here on the preview writes the response itself, to reply.raw.
      reply.hijack();
      preview(request.raw, reply.raw);
    };
    app.all(MOUNT, serve);
    app.all(`${MOUNT}/*`, serve);
    app.addHook('onClose', async () => preview.close());
  }

  return app;
}
