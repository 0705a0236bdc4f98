// Types of scripts/demo-web.mjs (used by test/demo-web.test.ts).
import type { Server } from 'node:http';
export function buildDemo(outDir?: string): Promise<{ outfile: string; bytes: number }>;
export function serveDemo(opts?: { outDir?: string; port?: number; host?: string }): Promise<{ url: string; server: Server }>;
