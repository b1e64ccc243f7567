import { IsUsername } from '@app/common/validators/username';

/** A name as registration takes it: any other cannot belong to anyone. */
export class FindUserQuery {
  @IsUsername('Matched regardless of case')
  username: string;
}
