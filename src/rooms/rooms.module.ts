import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '@app/auth/auth.module';
import { UsersModule } from '@app/users/users.module';
import { AccessAudit } from './access-audit.service';
import { MembershipService } from './membership.service';
import { RoomMember } from './room-member.entity';
import { Room } from './room.entity';
import { RoomsController } from './rooms.controller';
import { RoomsService } from './rooms.service';

@Module({
  imports: [TypeOrmModule.forFeature([Room, RoomMember]), AuthModule, UsersModule],
  controllers: [RoomsController],
  providers: [RoomsService, MembershipService, AccessAudit],
  exports: [RoomsService],
})
export class RoomsModule {}
