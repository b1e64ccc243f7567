import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { loadConfig } from './app-config';
import type { RawEnvironment } from './env.validation';

/**
 * Validated, typed configuration for the whole app. Tests pass their own
 * environment instead of mutating `process.env`.
 */
@Module({})
export class AppConfigModule {
  static forRoot(env?: RawEnvironment): DynamicModule {
    return {
      module: AppConfigModule,
      global: true,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: env !== undefined,
          ignoreEnvVars: env !== undefined,
          load: [() => ({ ...loadConfig(env ?? process.env) })],
        }),
      ],
      exports: [ConfigModule],
    };
  }
}
