import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import { reportedErrorBody } from '@app/common/errors/to-error-body';
import { ServerEvent } from '@app/contract/events';
import { MetricsService } from '@app/metrics/metrics.service';
import { Transport } from '@app/metrics/transport';
import type { AppSocket } from '@app/realtime/socket-data';

/**
 * The Socket.IO transport's one filter: any failure of a handler, guard,
 * pipe or interceptor answers the ack with `{ ok: false, error }`, or emits
 * `error` when the client sent no ack. Nothing propagates further.
 */
@Catch()
export class WsExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(WsExceptionFilter.name);

  constructor(private readonly metrics: MetricsService) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const client = host.switchToWs().getClient<AppSocket>();
    const ack = host
      .getArgs()
      .find((arg): arg is (response: unknown) => void => typeof arg === 'function');
    const error = reportedErrorBody(exception, this.logger);
    const event = host.switchToWs().getPattern();
    this.metrics.rejectedEvents.inc({ transport: Transport.SocketIo, event, code: error.code });
    if (ack) ack({ ok: false, error });
    else client.emit(ServerEvent.Error, error);
  }
}
