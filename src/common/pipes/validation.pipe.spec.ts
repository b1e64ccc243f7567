import { AppException } from '@app/common/errors/app.exception';
import { MessageBodyDto } from '@app/messages/dto/send-message.dto';
import { createValidationPipe } from './validation.pipe';

async function refusal(value: unknown): Promise<AppException> {
  const pipe = createValidationPipe();
  try {
    await pipe.transform(value, { type: 'body', metatype: MessageBodyDto });
  } catch (error) {
    if (error instanceof AppException) return error;
    throw error;
  }
  throw new Error('The value was accepted');
}

describe('the validation pipe', () => {
  it('names the type a field misses before anything about its content', async () => {
    const error = await refusal({ text: 5 });
    expect(error.message).toBe('text must be a string');
    expect(error.details).toEqual([
      { field: 'text', constraints: expect.arrayContaining(['text must be a string']) },
    ]);
    expect(error.details[0].constraints[0]).toBe('text must be a string');
  });

  it('names the length of a string that is too long', async () => {
    const error = await refusal({ text: 'x'.repeat(4_001) });
    expect(error.message).toMatch(/^text must be/);
    expect(error.message).toContain('4000');
  });
});
