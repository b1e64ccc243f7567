import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { LoggerModule, type Params } from 'nestjs-pino';
import type { AllConfig } from '@app/config/app-config';
import { redactUrl } from './redact-url';

const REQUEST_ID_HEADER = 'x-request-id';
const REQUEST_ID_PATTERN = /^[\w.:-]{1,128}$/;

/** Reuses a well-formed incoming request id (from a proxy), or makes one. */
function requestId(request: IncomingMessage, response: ServerResponse): string {
  const incoming = request.headers[REQUEST_ID_HEADER];
  const id =
    typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
  response.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

function loggerParams(config: ConfigService<AllConfig, true>): Params {
  const http = config.get('http', { infer: true });
  return {
    pinoHttp: {
      level: http.logLevel,
      base: { service: http.serviceName },
      genReqId: requestId,
      autoLogging: { ignore: (request) => /^\/(health|metrics)/.test(request.url ?? '') },
      // Only what is needed to follow a request: never headers, bodies or query tokens.
      serializers: {
        req: (request: { id: string; method: string; url: string }) => ({
          id: request.id,
          method: request.method,
          url: redactUrl(request.url),
        }),
        res: (response: { statusCode: number }) => ({ statusCode: response.statusCode }),
      },
      redact: {
        paths: ['password', '*.password', 'token', '*.token', 'accessToken'],
        censor: '[redacted]',
      },
    },
  };
}

/** Structured JSON logs with a request id on every line of a request. */
@Module({
  imports: [LoggerModule.forRootAsync({ inject: [ConfigService], useFactory: loggerParams })],
})
export class LoggingModule {}
