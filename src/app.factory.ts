import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Logger, RequestMethod, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppLogger } from './logging/app-logger';
import { REQUEST_LOGGING, rootLogger } from './logging/logging.module';
import { HttpMetricsMiddleware } from './metrics/http-metrics.middleware';
import { AppModule } from './app.module';
import { AppIoAdapter } from './realtime/app-io.adapter';
import { trustRule } from './realtime/client-address';
import { RedisIoAdapter } from './realtime/redis-io.adapter';
import { loadConfig, type HttpConfig } from './config/app-config';
import { serviceEnvironment } from './config/service-environment';
import type { RawEnvironment } from './config/env.validation';
import { REFERENCE_PERSONAL_EVENTS_PATH } from './sse/sse.controller';

export const API_PREFIX = 'api';

/** With Redis, Socket.IO joins the other nodes through its Redis adapter, connected before listen. */
async function createIoAdapter(app: INestApplication, scaledOut: boolean): Promise<AppIoAdapter> {
  if (!scaledOut) return new AppIoAdapter(app);
  const adapter = new RedisIoAdapter(app);
  await adapter.connect();
  return adapter;
}

function setupSwagger(app: INestApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Realtime backend')
      .setDescription(
        'REST companion of the real-time API: accounts, rooms, membership and message history. ' +
          'Every error has the shape { code, message, details }.',
      )
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup(`${API_PREFIX}/docs`, app, document, {
    jsonDocumentUrl: `${API_PREFIX}/docs-json`,
  });
}

/** Logs and times every request, mounted first: those the body parser refuses included. */
function observeRequests(app: NestExpressApplication): void {
  const metrics = app.get(HttpMetricsMiddleware);
  app.use(app.get<RequestHandler>(REQUEST_LOGGING));
  app.use((request: Request, response: Response, next: NextFunction) =>
    metrics.use(request, response, next),
  );
}

function applyHttpSettings(app: NestExpressApplication, http: HttpConfig): void {
  app.set('trust proxy', trustRule(http.trustProxy));
  app.disable('x-powered-by');
  // Before the body parser: a page of an allowed origin must be let read its refusals (413, 400) too.
  app.enableCors({
    origin: http.corsOrigins.includes('*') ? true : http.corsOrigins,
    credentials: true,
  });
  app.useBodyParser('json', { limit: http.bodyLimitBytes });
  app.setGlobalPrefix(API_PREFIX, {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
      { path: REFERENCE_PERSONAL_EVENTS_PATH, method: RequestMethod.GET },
    ],
  });
}

/**
 * The page's own scripts, styles and connections only, and no framing: the
 * page holds a bearer token, and a framed login invites clickjacking.
 */
const CHAT_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " +
    "form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** The chat page (built by `npm run build`); only existing files are answered, so no route is shadowed. */
function serveChatPage(app: NestExpressApplication, webRoot: string): void {
  if (!existsSync(join(webRoot, 'index.html'))) {
    new Logger('ChatPage').warn(`Not serving the chat page: no index.html in ${webRoot}`);
    return;
  }
  app.useStaticAssets(webRoot, {
    index: 'index.html',
    setHeaders: (response: Response) => {
      for (const [name, value] of Object.entries(CHAT_PAGE_HEADERS))
        response.setHeader(name, value);
    },
  });
}

/**
 * Builds the whole application, as the service runs it and as tests drive it.
 * Configuration is validated first, so a bad value stops here with its name.
 */
export async function createApp(
  env: RawEnvironment = serviceEnvironment(),
): Promise<NestExpressApplication> {
  const config = loadConfig(env);
  const root = rootLogger(config.http);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(env, root), {
    // Structured from the first line, start-up failures included.
    logger: new AppLogger(root),
    bodyParser: false,
    // A failure reaches the caller, which says why in one line, rather than Nest's dump and exit.
    abortOnError: false,
  });
  observeRequests(app);
  applyHttpSettings(app, config.http);
  serveChatPage(app, config.http.webRoot);
  app.useWebSocketAdapter(await createIoAdapter(app, config.redis.url !== undefined));
  if (config.http.apiDocs) setupSwagger(app);
  return app;
}
