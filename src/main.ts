import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { ConfigService } from '@nestjs/config';
import { exitOnSignals } from './common/exit-on-signals';
import { AppLogger } from './logging/app-logger';
import { createApp } from './app.factory';
import type { AllConfig } from './config/app-config';
import { InvalidConfigurationError } from './config/env.validation';

async function bootstrap(): Promise<void> {
  // Nothing accepted yet, so nothing to drain: a signal during start-up just ends it.
  const startedUp = exitOnSignals('during start-up');
  const app = await createApp();
  const config = app.get(ConfigService<AllConfig, true>);
  const http = config.get('http', { infer: true });
  const logger = app.get(AppLogger);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal} received: draining and shutting down`);
    // A last resort if something refuses to close.
    setTimeout(() => {
      logger.error(`Shutdown took longer than ${http.shutdownTimeoutMs} ms: exiting`);
      process.exit(1);
    }, http.shutdownTimeoutMs).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error(error);
        process.exit(1);
      },
    );
  };
  // Listening ends the start-up: until then (modules' init hooks run in listen) nothing is
  // accepted, and a signal just ends the process, rather than close the app mid-init.
  await app.listen(http.port, http.host).catch((error: Error) => {
    throw new Error(`cannot listen on HOST=${http.host} PORT=${http.port}: ${error.message}`);
  });
  // Kept for the whole shutdown: a second signal (npm and terminals pass Ctrl-C on
  // to the child too) would otherwise kill the process halfway.
  startedUp();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The address bound, not getUrl()'s: that names 127.0.0.1 for 0.0.0.0.
  const { port } = app.getHttpServer().address() as AddressInfo;
  logger.log(`Listening on ${http.host}:${port}`);
}

bootstrap().catch((error: unknown) => {
  if (error instanceof InvalidConfigurationError) {
    console.error(error.message);
  } else {
    console.error('Start-up failed:', error instanceof Error ? error.message : error);
  }
  process.exit(1);
});
