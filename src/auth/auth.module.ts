import { createSecretKey } from 'node:crypto';
import { forwardRef, Logger, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JwtModule, type JwtModuleOptions } from '@nestjs/jwt';
import type { AllConfig } from '@app/config/app-config';
import { UsersModule } from '@app/users/users.module';
import { AccountClosures } from './account-closures';
import { AuthController } from './auth.controller';
import { AuthService } from './auth.service';
import { JwtAuthGuard } from './jwt-auth.guard';
import { PasswordHasher } from './password-hasher';
import { JWT_ALGORITHM, TokenService } from './token.service';

function jwtOptions(config: ConfigService<AllConfig, true>): JwtModuleOptions {
  const auth = config.get('auth', { infer: true });
  if (auth.jwtSecretGenerated) {
    new Logger('Auth').warn(
      'JWT_SECRET is not set: using a random per-process secret. Tokens will not survive a restart or work across nodes.',
    );
  }
  const secretKey = createSecretKey(Buffer.from(auth.jwtSecret));
  return {
    // A KeyObject made once: given a string, jsonwebtoken first tries it as a PEM
    // public key on every verify and builds the secret key from the failure.
    secretOrKeyProvider: () => secretKey,
    signOptions: { algorithm: JWT_ALGORITHM },
    verifyOptions: { algorithms: [JWT_ALGORITHM] },
  };
}

@Module({
  imports: [
    forwardRef(() => UsersModule),
    JwtModule.registerAsync({ inject: [ConfigService], useFactory: jwtOptions }),
  ],
  controllers: [AuthController],
  providers: [AuthService, PasswordHasher, TokenService, JwtAuthGuard, AccountClosures],
  exports: [TokenService, JwtAuthGuard],
})
export class AuthModule {}
