import { InitialSchema1764028800000 } from './1764028800000-InitialSchema';
import { PartialClientMsgIdIndex1796193060000 } from './1796193060000-PartialClientMsgIdIndex';
import { OwnerAndMembershipIndexes1796900000000 } from './1796900000000-OwnerAndMembershipIndexes';
import { MembersByJoinTime1797000000000 } from './1797000000000-MembersByJoinTime';

/** Every migration, oldest first. A new migration file is added here too. */
export const MIGRATIONS = [
  InitialSchema1764028800000,
  PartialClientMsgIdIndex1796193060000,
  OwnerAndMembershipIndexes1796900000000,
  MembersByJoinTime1797000000000,
];
