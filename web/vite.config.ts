import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const fromHere = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Where `npm start` listens, for `vite --config web/vite.config.ts` during development. */
const SERVICE = process.env.SERVICE_URL ?? 'http://127.0.0.1:3000';

/** The chat page, built to dist/web, which the service serves at `/`. */
export default defineConfig({
  root: fromHere('.'),
  base: '/',
  resolve: { alias: { '@app': fromHere('../src') } },
  build: {
    outDir: fromHere('../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    proxy: {
      '/api': SERVICE,
      '/socket.io': { target: SERVICE, ws: true },
      '/ws': { target: SERVICE, ws: true },
    },
  },
});
