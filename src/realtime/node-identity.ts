import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';

/** This process among the nodes sharing Redis. */
@Injectable()
export class NodeIdentity {
  readonly id = randomUUID();
}
