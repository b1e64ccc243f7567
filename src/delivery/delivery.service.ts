import { Injectable } from '@nestjs/common';
import { NotificationType, ServerEvent } from '@app/contract/events';
import type { MessageJson, NotificationJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';

/** One event for one channel (`chat:<roomId>` or `user:<userId>`). */
export interface Delivery {
  channel: string;
  event: ServerEvent;
  payload: unknown;
}

export type DeliveryListener = (delivery: Delivery) => void;

/**
 * The one path by which the domain tells clients something. Transports
 * subscribe and deliver to their own local subscribers of the channel.
 */
@Injectable()
export class DeliveryService {
  private readonly listeners = new Set<DeliveryListener>();

  subscribe(listener: DeliveryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(delivery: Delivery): void {
    for (const listener of this.listeners) listener(delivery);
  }

  messageCreated(message: MessageJson): void {
    this.publish({
      channel: roomNames.chat(message.roomId),
      event: ServerEvent.Message,
      payload: message,
    });
  }

  notify(userId: string, notification: NotificationJson): void {
    this.publish({
      channel: roomNames.user(userId),
      event: ServerEvent.Notification,
      payload: notification,
    });
  }

  mentioned(userId: string, message: MessageJson): void {
    this.notify(userId, { type: NotificationType.Mention, message });
  }
}
