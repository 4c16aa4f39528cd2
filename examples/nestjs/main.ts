/**
 * Runs the example app: `npx tsx examples/nestjs/main.ts` (PORT=3000 by default). Mail is
 * configured from the environment; with none, it goes to the sandbox folder `.mailroom/outbox`.
 * Ctrl-C or SIGTERM closes the app, and with it the transport's connections.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

const app = await NestFactory.create(AppModule);
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT ?? 3000));
console.log(`listening on ${await app.getUrl()}`);
