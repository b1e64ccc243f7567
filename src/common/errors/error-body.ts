import type { ErrorCode } from './error-code';

/** One field that failed validation. */
export interface FieldError {
  field: string;
  constraints: string[];
}

/** The one error shape of the contract, on every transport. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details: FieldError[];
}
