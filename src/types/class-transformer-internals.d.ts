// class-transformer's own metadata and defaults, which its package types but does not export
// (@nestjs/mapped-types reads the same storage).
declare module 'class-transformer/cjs/storage' {
  export { defaultMetadataStorage } from 'class-transformer/types/storage';
}
declare module 'class-transformer/cjs/constants/default-options.constant' {
  export { defaultOptions } from 'class-transformer/types/constants/default-options.constant';
}
