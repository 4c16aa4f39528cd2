/**
 * MailroomModule: one EmailService for a Nest application, checked at start-up and closed at
 * shutdown. No decorator syntax here: the module is a plain class used as a dynamic module, and
 * every provider is a factory with explicit `inject` tokens, so neither this package's build nor the
 * app's needs `emitDecoratorMetadata`.
 */
import {
  type DynamicModule,
  type FactoryProvider,
  Inject,
  type InjectionToken,
  type ModuleMetadata,
  type OptionalFactoryDependency,
  type Provider,
} from '@nestjs/common';
import { EmailService, type EmailServiceOptions } from '../service.js';

/** The token of the app's {@link EmailService}: `@Inject(MAILROOM_SERVICE)` or {@link InjectMailroom}. */
export const MAILROOM_SERVICE: unique symbol = Symbol.for('mailroom-js.nestjs.service');
/** The token of the resolved {@link MailroomModuleOptions}. */
export const MAILROOM_OPTIONS: unique symbol = Symbol.for('mailroom-js.nestjs.options');
const MAILROOM_LIFECYCLE = Symbol.for('mailroom-js.nestjs.lifecycle');

/**
 * Options of {@link MailroomModule.forRoot}: those of `new EmailService()` (a `ConfigError`,
 * `TypeError` or `TemplateError` from them fails the app's creation), plus what happens at start-up.
 */
export interface MailroomModuleOptions extends EmailServiceOptions {
  /**
   * Call `verify()` on the transport when the module initialises (SMTP: connect, STARTTLS and
   * AUTH; Mailgun: a check of the domain and key), so that a wrong password or host fails
   * `app.init()` / `app.listen()` with its `EmailError` rather than the first send. Default `true`;
   * `false` to start without the provider (offline development, a provider that is down at deploy).
   */
  verify?: boolean;
}

/** Options of {@link MailroomModule.forRoot}: the service's options and where the module is visible. */
export interface MailroomModuleRootOptions extends MailroomModuleOptions {
  /** Register the module globally, so feature modules inject the service without importing it. Default `false`. */
  isGlobal?: boolean;
}

/**
 * Options of {@link MailroomModule.forRootAsync}: a factory for the options, with Nest's usual
 * `imports` and `inject` (e.g. `ConfigModule` and `ConfigService`).
 */
export interface MailroomModuleAsyncOptions {
  /** Modules whose providers the factory needs, e.g. `[ConfigModule]`. */
  imports?: ModuleMetadata['imports'];
  /** Tokens handed to `useFactory`, in order, e.g. `[ConfigService]`. */
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  /** Returns (or resolves to) the module's options. A rejection fails the app's creation. */
  // biome-ignore lint/suspicious/noExplicitAny: Nest hands the injected values in untyped, as its own modules declare.
  useFactory: (...args: any[]) => MailroomModuleOptions | Promise<MailroomModuleOptions>;
  /** Register the module globally. Default `false`. */
  isGlobal?: boolean;
}

/**
 * A parameter decorator, `@Inject(MAILROOM_SERVICE)`: injects the app's {@link EmailService}.
 *
 * @example
 * ```ts
 * constructor(@InjectMailroom() private readonly mail: EmailService) {}
 * ```
 */
export function InjectMailroom(): PropertyDecorator & ParameterDecorator {
  return Inject(MAILROOM_SERVICE);
}

/**
 * The mailroom module for NestJS: provides an {@link EmailService} under the {@link MAILROOM_SERVICE}
 * token and as the `EmailService` class, compiles every template and verifies the transport when
 * the module initialises (a `TemplateError` or an `EmailError` rejects `app.init()` /
 * `app.listen()`), and closes the transport's connections at application shutdown (`app.close()`,
 * or a signal with `app.enableShutdownHooks()`).
 *
 * @example
 * ```ts
 * import { Module } from '@nestjs/common';
 * import { ConfigModule, ConfigService } from '@nestjs/config';
 * import { configFromEnv } from 'mailroom-js';
 * import { MailroomModule } from 'mailroom-js/nestjs';
 *
 * @Module({
 *   imports: [
 *     MailroomModule.forRootAsync({
 *       imports: [ConfigModule],
 *       inject: [ConfigService],
 *       useFactory: (config: ConfigService) => ({
 *         ...configFromEnv({ SMTP_HOST: config.get('SMTP_HOST'), SMTP_FROM_EMAIL: config.get('MAIL_FROM') }),
 *         appName: 'Acme',
 *       }),
 *     }),
 *   ],
 *   controllers: [SignupController],
 * })
 * export class AppModule {}
 * ```
 */
// biome-ignore lint/complexity/noStaticOnlyClass: Nest identifies a module by its class.
export class MailroomModule {
  /** The module with options known now. */
  static forRoot(options: MailroomModuleRootOptions): DynamicModule {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('MailroomModule.forRoot: options are required ({ transport, from, … })');
    }
    const { isGlobal, ...rest } = options;
    return mailroomModule(MailroomModule, { provide: MAILROOM_OPTIONS, useValue: rest }, [], isGlobal);
  }

  /** The module with options from a factory that may inject other providers (`ConfigService`). */
  static forRootAsync(options: MailroomModuleAsyncOptions): DynamicModule {
    if (typeof options?.useFactory !== 'function') {
      throw new TypeError('MailroomModule.forRootAsync: useFactory must be a function returning the options');
    }
    const options$: FactoryProvider = {
      provide: MAILROOM_OPTIONS,
      useFactory: options.useFactory,
      inject: options.inject ?? [],
    };
    return mailroomModule(MailroomModule, options$, options.imports ?? [], options.isGlobal);
  }
}

/**
 * Internal: the dynamic module both `MailroomModule` and `MailroomTestingModule` return, around a
 * provider of the options and one that builds the service from them.
 */
export function mailroomModule(
  module: DynamicModule['module'],
  options: Provider,
  imports: NonNullable<ModuleMetadata['imports']>,
  isGlobal: boolean | undefined,
  extra: { providers?: Provider[]; build?: (options: MailroomModuleOptions) => EmailService } = {},
): DynamicModule {
  const build = extra.build ?? ((o: MailroomModuleOptions) => new EmailService(serviceOptions(o)));
  const extraProviders = extra.providers ?? [];
  return {
    module,
    global: isGlobal === true,
    imports,
    providers: [
      options,
      { provide: MAILROOM_SERVICE, useFactory: build, inject: [MAILROOM_OPTIONS] },
      { provide: EmailService, useExisting: MAILROOM_SERVICE },
      {
        provide: MAILROOM_LIFECYCLE,
        useFactory: lifecycle,
        inject: [MAILROOM_SERVICE, MAILROOM_OPTIONS],
      },
      ...extraProviders,
    ],
    exports: [
      MAILROOM_SERVICE,
      EmailService,
      MAILROOM_OPTIONS,
      ...extraProviders.map((p) => (typeof p === 'function' ? p : p.provide)),
    ],
  };
}

/** The service's own options, without the module's. */
function serviceOptions(options: MailroomModuleOptions): EmailServiceOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('MailroomModule: the options factory must return { transport, from, … }');
  }
  const { verify: _verify, ...rest } = options;
  return rest;
}

/**
 * The Nest lifecycle hooks, on a provider of their own: Nest calls `onModuleInit` and
 * `onApplicationShutdown` on every static provider of the module. Shutdown runs after the HTTP
 * server has stopped taking requests, so no send in a request is cut off by `close()`.
 */
function lifecycle(service: EmailService, options: MailroomModuleOptions) {
  return {
    async onModuleInit(): Promise<void> {
      service.templates.compileAll();
      if (options.verify !== false) await service.verify();
    },
    async onApplicationShutdown(): Promise<void> {
      await service.close();
    },
  };
}
