import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { Socket } from 'socket.io';
import { reportedErrorBody, type FailureLog } from '@app/common/errors/to-error-body';
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
    const ack = host
      .getArgs()
      .find((arg): arg is (response: unknown) => void => typeof arg === 'function');
    answerEventFailure(
      {
        client: host.switchToWs().getClient<AppSocket>(),
        event: host.switchToWs().getPattern(),
        ack,
      },
      exception,
      { metrics: this.metrics, logger: this.logger },
    );
  }
}

/**
 * A Socket.IO event's failure, in the contract's shape: its ack gets
 * `{ ok: false, error }`, or the client an `error` event when it sent none.
 * Also for events refused before they reach the filter.
 */
export function answerEventFailure(
  { client, event, ack }: { client: Socket; event: string; ack?: (response: unknown) => void },
  exception: unknown,
  { metrics, logger }: { metrics: MetricsService; logger: FailureLog },
): void {
  const error = reportedErrorBody(exception, logger);
  metrics.rejectedEvents.inc({ transport: Transport.SocketIo, event, code: error.code });
  if (ack) ack({ ok: false, error });
  else client.emit(ServerEvent.Error, error);
}
