import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { SkipThrottle } from '@nestjs/throttler';
import type { Response } from 'express';
import { ErrorCode } from '@app/common/errors/error-code';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { ReadinessChecks } from './readiness-checks';

@ApiTags('health')
@SkipThrottle()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly checks: ReadinessChecks,
    private readonly shutdown: GracefulShutdown,
  ) {}

  @Get('live')
  @ApiOkResponse({ description: 'The process is up' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** 200 when every dependency answers; 503 with the contract's error shape and each check's state. */
  @Get('ready')
  @ApiOkResponse({
    description:
      'Database reachable, migrations applied, not draining; and Redis, when configured, unless READINESS_REQUIRES_REDIS=false',
  })
  @ApiServiceUnavailableResponse({ description: 'A dependency is down; `checks` says which' })
  async ready(@Res({ passthrough: true }) response: Response) {
    if (this.shutdown.draining) return notReady(response, 'shutting down', {});
    try {
      const result = await this.health.check(this.checks.all());
      return { status: result.status, checks: result.details };
    } catch (error) {
      const result = (error as { response?: HealthCheckResult }).response;
      const down = Object.keys(result?.error ?? {});
      return notReady(response, down.join(', ') || 'health check failed', result?.details ?? {});
    }
  }
}

function notReady(response: Response, reason: string, checks: HealthCheckResult['details']) {
  response.status(HttpStatus.SERVICE_UNAVAILABLE);
  return {
    code: ErrorCode.Unavailable,
    message: `Not ready: ${reason}`,
    details: [],
    status: 'error',
    checks,
  };
}
