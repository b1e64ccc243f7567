import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DynamicModule, Module } from '@nestjs/common';
import pino, { type Logger as Pino } from 'pino';
import { pinoHttp } from 'pino-http';
import type { HttpConfig } from '@app/config/app-config';
import { AppLogger } from './app-logger';
import { redactUrl } from './redact-url';

const REQUEST_ID_HEADER = 'x-request-id';
const REQUEST_ID_PATTERN = /^[\w.:-]{1,128}$/;

/**
 * The request logger, an Express middleware the app mounts ahead of the body
 * parser, so that a request the parser refuses is logged too.
 */
export const REQUEST_LOGGING = Symbol('REQUEST_LOGGING');

/** Reuses a well-formed incoming request id (from a proxy), or makes one. */
function requestId(request: IncomingMessage, response: ServerResponse): string {
  const incoming = request.headers[REQUEST_ID_HEADER];
  const id =
    typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
  response.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/** Logs every request once, on completion, with its id; never headers, bodies or query tokens. */
function requestLogging(root: Pino) {
  return pinoHttp({
    logger: root,
    genReqId: requestId,
    autoLogging: { ignore: (request) => /^\/(health|metrics)/.test(request.url ?? '') },
    serializers: {
      req: (request: { id: string; method: string; url: string }) => ({
        id: request.id,
        method: request.method,
        url: redactUrl(request.url),
      }),
      res: (response: { statusCode: number }) => ({ statusCode: response.statusCode }),
    },
  });
}

/**
 * Never written: credentials, and what a failed query carries of its row
 * (TypeORM's QueryFailedError keeps the statement's parameters, a password
 * hash among them, and PostgreSQL's `detail` quotes the values).
 */
const REDACTED_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'accessToken',
  'err.parameters',
  'err.detail',
  'err.driverError',
];

/** The one root logger of the process, also used before the application exists. */
export function rootLogger(
  http: Pick<HttpConfig, 'logLevel' | 'serviceName'>,
  /** Standard output unless given (tests). */
  destination?: pino.DestinationStream,
): Pino {
  const options: pino.LoggerOptions = {
    level: http.logLevel,
    base: { service: http.serviceName },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Structured JSON logs: one line per request with its id (`req.log`, which
 * the HTTP exception filter also uses), and Nest's own logs.
 *
 * No AsyncLocalStorage binds requests to log calls: on Node 20 an active one
 * runs a hook for every promise in the process, Socket.IO events included,
 * which cost about 8 % of the CPU of live traffic.
 */
@Module({})
export class LoggingModule {
  /** `root`: the process's one root logger, which Nest already logs through from its start. */
  static forRoot(root: Pino): DynamicModule {
    return {
      module: LoggingModule,
      global: true,
      providers: [
        { provide: AppLogger, useValue: new AppLogger(root) },
        { provide: REQUEST_LOGGING, useValue: requestLogging(root) },
      ],
      exports: [AppLogger, REQUEST_LOGGING],
    };
  }
}
