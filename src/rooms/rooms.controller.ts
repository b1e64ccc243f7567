import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  Post,
  Query,
} from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { AuthUser } from '@app/auth/auth-user';
import { Authenticated } from '@app/auth/authenticated.decorator';
import { CurrentUser } from '@app/auth/current-user.decorator';
import { ErrorCode } from '@app/common/errors/error-code';
import { IdCursorPageQuery } from '@app/common/pagination/page-query.dto';
import { ApiErrors } from '@app/common/swagger/api-errors.decorator';
import { AddMemberDto } from './dto/add-member.dto';
import { CreateRoomDto } from './dto/create-room.dto';
import { MemberPage, MemberView, RoomPage, RoomView } from './dto/room.view';
import { MembershipService } from './membership.service';
import { RoomsService } from './rooms.service';

@ApiTags('rooms')
@Authenticated()
@ApiErrors(ErrorCode.RateLimited, ErrorCode.Unavailable)
@Controller('rooms')
export class RoomsController {
  constructor(
    private readonly rooms: RoomsService,
    private readonly membership: MembershipService,
  ) {}

  @Post()
  @ApiCreatedResponse({
    type: RoomView,
    description: 'The room; its creator is its owner and first member',
  })
  @ApiErrors(ErrorCode.ValidationFailed)
  async create(@CurrentUser() user: AuthUser, @Body() dto: CreateRoomDto): Promise<RoomView> {
    return RoomView.from(await this.rooms.create(user.id, dto));
  }

  @Get()
  @ApiOkResponse({ type: RoomPage, description: "Public rooms and the caller's private rooms" })
  @ApiErrors(ErrorCode.ValidationFailed)
  async list(@CurrentUser() user: AuthUser, @Query() query: IdCursorPageQuery): Promise<RoomPage> {
    const page = await this.rooms.listVisible(user.id, query.limit, query.cursor);
    return { items: page.items.map((room) => RoomView.from(room)), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiOkResponse({ type: RoomView })
  @ApiErrors(ErrorCode.NotFound)
  async get(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<RoomView> {
    return RoomView.from(await this.rooms.findAccessible(user.id, id));
  }

  @Get(':id/members')
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiOkResponse({
    type: MemberPage,
    description:
      "The room's members, in the order of their ids. A `chat:join` answers the first 1000 (`JOIN_MEMBERS_LIMIT`) as `members`, with `membersTruncated` when there are more: the rest follow from `cursor` set to the last one's id.",
  })
  @ApiErrors(ErrorCode.ValidationFailed, ErrorCode.NotFound)
  listMembers(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Query() query: IdCursorPageQuery,
  ): Promise<MemberPage> {
    return this.membership.list(user, id, query.limit, query.cursor);
  }

  @Post(':id/members')
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiCreatedResponse({
    type: MemberView,
    description:
      'Anyone may add themself to a public room, and its members may add others; only the owner adds members to a private room (403 to its other members; 404 to others, as for any room they cannot see). The invitee gets a room:invited notification. Adding a member again answers their membership as it is, and notifies no one.',
  })
  @ApiErrors(ErrorCode.ValidationFailed, ErrorCode.Forbidden, ErrorCode.NotFound)
  addMember(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Body() dto: AddMemberDto,
  ): Promise<MemberView> {
    return this.membership.add(user, id, dto.userId);
  }

  @Delete(':id/members/:userId')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiParam({ name: 'userId', format: 'uuid' })
  @ApiNoContentResponse({
    description:
      'Removed. An owner who leaves hands the room to its longest-standing remaining member.',
  })
  @ApiErrors(ErrorCode.Forbidden, ErrorCode.NotFound)
  removeMember(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Param('userId') userId: string,
  ): Promise<void> {
    return this.membership.remove(user, id, userId);
  }
}
