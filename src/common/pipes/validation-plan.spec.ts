import 'reflect-metadata';
import { ValidationPipe } from '@nestjs/common';
import { Type } from 'class-transformer';
import {
  IsString,
  Validate,
  ValidateNested,
  ValidatorConstraint,
  type ValidatorConstraintInterface,
} from 'class-validator';
import fc from 'fast-check';
import { RegisterDto, LoginDto } from '@app/auth/dto/credentials.dto';
import { JoinRoomDto } from '@app/chat/dto/join-room.dto';
import { RoomRefDto } from '@app/chat/dto/room-ref.dto';
import { SendChatMessageDto } from '@app/chat/dto/send-chat-message.dto';
import { AppException } from '@app/common/errors/app.exception';
import { IdCursorPageQuery, LimitQuery } from '@app/common/pagination/page-query.dto';
import { HistoryQuery } from '@app/messages/dto/history.query';
import { MessageBodyDto } from '@app/messages/dto/send-message.dto';
import {
  BroadcastFrameDto,
  FrameTypeDto,
  PingFrameDto,
  RoomFrameDto,
} from '@app/raw-ws/dto/frames.dto';
import { AddMemberDto } from '@app/rooms/dto/add-member.dto';
import { CreateRoomDto } from '@app/rooms/dto/create-room.dto';
import { RoomEventsQuery } from '@app/sse/dto/room-events.query';
import { FindUserQuery } from '@app/users/dto/find-user.query';
import { createValidationPipe, VALIDATION_PIPE_OPTIONS } from './validation.pipe';
import { validationPlanFor } from './validation-plan';

type Dto = new () => object;

const ROOM_ID = '0190c0de-0000-7000-8000-000000000001';

/** Every DTO of the service, with a payload it accepts. */
const DTOS: Array<[Dto, Record<string, unknown>]> = [
  [SendChatMessageDto, { roomId: ROOM_ID, text: ' hello @ada ', clientMsgId: 'c-1' }],
  [MessageBodyDto, { text: 'hello' }],
  [RoomRefDto, { roomId: ROOM_ID }],
  [JoinRoomDto, { roomId: ROOM_ID, since: 3 }],
  [RegisterDto, { username: 'ada.l', password: 'correct horse' }],
  [LoginDto, { username: 'ada', password: 'x' }],
  [CreateRoomDto, { name: ' general ', isPrivate: false }],
  [AddMemberDto, { userId: ROOM_ID }],
  [FindUserQuery, { username: 'ada.l' }],
  [LimitQuery, { limit: '20' }],
  [HistoryQuery, { since: '4', limit: '10' }],
  [IdCursorPageQuery, { cursor: ROOM_ID }],
  [RoomEventsQuery, { since: '0', token: 'abc' }],
  [FrameTypeDto, { type: 'join' }],
  [PingFrameDto, { type: 'ping' }],
  [RoomFrameDto, { type: 'join', room: ROOM_ID }],
  [BroadcastFrameDto, { type: 'broadcast', room: ROOM_ID, payload: { a: [1, { b: null }] } }],
];

/** Payloads of the per-message paths, which the plan must build without the full pipe. */
const HOT: Array<[Dto, Record<string, unknown>]> = [
  [SendChatMessageDto, { roomId: ROOM_ID, text: 'hi', clientMsgId: 'c-1' }],
  [SendChatMessageDto, { roomId: ROOM_ID, text: 'hi' }],
  [SendChatMessageDto, { roomId: ROOM_ID, text: 'hi', clientMsgId: null }],
  [RoomRefDto, { roomId: ROOM_ID }],
  [JoinRoomDto, { roomId: ROOM_ID }],
  [JoinRoomDto, { roomId: ROOM_ID, since: 0 }],
  [RoomFrameDto, { type: 'leave', room: ROOM_ID }],
  [BroadcastFrameDto, { type: 'broadcast', room: ROOM_ID, payload: { text: 'hi', n: [1, 2] } }],
  [BroadcastFrameDto, { type: 'broadcast', room: ROOM_ID, payload: 'hi' }],
  [
    BroadcastFrameDto,
    {
      type: 'broadcast',
      room: ROOM_ID,
      payload: JSON.parse(
        '{"__proto__":1,"constructor":2,"prototype":3,"toString":4,"a":[{"constructor":{},"valueOf":5}]}',
      ) as unknown,
    },
  ],
  [JoinRoomDto, { roomId: ROOM_ID, since: null }],
  [
    RoomRefDto,
    JSON.parse(`{"roomId":"${ROOM_ID}","toString":1,"__proto__":2}`) as Record<string, unknown>,
  ],
  [PingFrameDto, { type: 'ping' }],
];

const planOf = (metatype: Dto) =>
  validationPlanFor(metatype, VALIDATION_PIPE_OPTIONS, VALIDATION_PIPE_OPTIONS.transformOptions!);

/** Text no database stores as sent, among ordinary text. */
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => `a${String.fromCharCode(code)}`),
  fc.constantFrom(
    ' ',
    '',
    '\u0000',
    ROOM_ID,
    ROOM_ID.toUpperCase(),
    'join',
    'broadcast',
    '12',
    '-1',
  ),
);

/** Keys class-transformer or class-validator treat specially. */
const trickyKey = fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'extra');

const fieldValue = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(fc.oneof(fc.string(), trickyKey), fc.jsonValue({ maxDepth: 2 })),
  fc.date({ noInvalidDate: true }),
);

/** Near-misses of a valid payload: each field kept, dropped or replaced, and fields added. */
function payloads(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const fields = Object.entries(valid).map(([key, value]) =>
    fc.oneof(
      { weight: 4, arbitrary: fc.constant([[key, value]]) },
      { weight: 1, arbitrary: fc.constant([]) },
      { weight: 2, arbitrary: fieldValue.map((other) => [[key, other]]) },
    ),
  );
  const added = fc.array(fc.tuple(fc.oneof(trickyKey, fc.string()), fieldValue), { maxLength: 2 });
  const mutated = fc
    .tuple(fc.tuple(...fields), fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, added))
    .map(([kept, extra]) => Object.fromEntries([...kept.flat(), ...extra]) as unknown);
  return fc.oneof(
    { weight: 6, arbitrary: mutated },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
}

/** A deep copy made in this realm (structuredClone's objects would not be plain here), own `__proto__` keys kept. */
function copy(value: unknown): unknown {
  if (value instanceof Date) return new Date(value.getTime());
  if (Array.isArray(value)) return value.map(copy);
  if (typeof value !== 'object' || value === null) return value;
  const copied: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value))
    Object.defineProperty(copied, key, {
      value: copy(field),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return copied;
}

type Outcome = { accepted: object; type: unknown } | { refused: unknown };

async function outcome(pipe: ValidationPipe, metatype: Dto, input: unknown): Promise<Outcome> {
  try {
    const accepted = (await pipe.transform(input, { type: 'body', metatype })) as object;
    return { accepted: { ...accepted }, type: accepted.constructor };
  } catch (error) {
    return { refused: error instanceof AppException ? error.toBody() : String(error) };
  }
}

describe('validation plan', () => {
  const planned = createValidationPipe();
  const full = new ValidationPipe(VALIDATION_PIPE_OPTIONS);

  it.each(DTOS)(
    '%p: the pipe with plans answers exactly as the full pipe',
    async (metatype, valid) => {
      await fc.assert(
        fc.asyncProperty(payloads(valid), async (payload) => {
          // The full pipe strips keys off its input: each side gets its own copy.
          const expected = await outcome(full, metatype, copy(payload));
          const actual = await outcome(planned, metatype, copy(payload));
          expect(actual).toStrictEqual(expected);
        }),
        { numRuns: 300 },
      );
    },
  );

  it.each(HOT)('%p: valid payloads are built by the plan', (metatype, valid) => {
    expect(planOf(metatype)?.accept(copy(valid))).toBeInstanceOf(metatype);
  });

  it.each(HOT)(
    '%p: valid payloads are built as the full pipe builds them',
    async (metatype, valid) => {
      const expected = await outcome(full, metatype, copy(valid));
      expect(await outcome(planned, metatype, copy(valid))).toStrictEqual(expected);
    },
  );

  it('leaves classes with nested or typed properties to the full pipe', () => {
    class Inner {
      @IsString()
      name: string;
    }
    class Outer {
      @ValidateNested()
      @Type(() => Inner)
      inner: Inner;
    }
    expect(
      validationPlanFor(Outer, VALIDATION_PIPE_OPTIONS, VALIDATION_PIPE_OPTIONS.transformOptions!),
    ).toBeUndefined();
  });

  it('leaves rules checked per element, or asynchronously, to the full pipe', () => {
    @ValidatorConstraint({ async: true })
    class LaterCheck implements ValidatorConstraintInterface {
      validate(): Promise<boolean> {
        return Promise.resolve(true);
      }
    }
    class Tags {
      @IsString({ each: true })
      tags: string[];
    }
    class Checked {
      @Validate(LaterCheck)
      value: string;
    }
    expect(planOf(Tags)).toBeUndefined();
    expect(planOf(Checked)).toBeUndefined();
  });

  it('leaves values that are not plain JSON to the full pipe', () => {
    const plan = planOf(BroadcastFrameDto)!;
    const frame = { type: 'broadcast', room: ROOM_ID };
    // eslint-disable-next-line no-sparse-arrays
    expect(plan.accept({ ...frame, payload: [1, , 2] })).toBeUndefined();
    expect(plan.accept({ ...frame, payload: new Date() })).toBeUndefined();
    expect(plan.accept({ ...frame, payload: Object.create(null) as object })).toBeUndefined();
    expect(plan.accept({ ...frame, payload: { deep: new Map() } })).toBeUndefined();
  });

  it('leaves other options to the full pipe', () => {
    const options = { ...VALIDATION_PIPE_OPTIONS, forbidNonWhitelisted: false };
    expect(validationPlanFor(RoomRefDto, options, {})).toBeUndefined();
  });
});
