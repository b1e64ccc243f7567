import { ApiProperty } from '@nestjs/swagger';
import { ERROR_CODES, type ErrorCode } from '@app/common/errors/error-code';

export class FieldErrorDto {
  @ApiProperty({ example: 'text' })
  field: string;

  @ApiProperty({
    type: [String],
    example: ['text must be shorter than or equal to 4000 characters'],
  })
  constraints: string[];
}

/** The contract's one error shape, as documented in Swagger. */
export class ErrorResponseDto {
  @ApiProperty({ enum: ERROR_CODES, example: 'VALIDATION_FAILED' })
  code: ErrorCode;

  @ApiProperty({ example: 'text must be shorter than or equal to 4000 characters' })
  message: string;

  @ApiProperty({ type: [FieldErrorDto] })
  details: FieldErrorDto[];
}
