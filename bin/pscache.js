#!/usr/bin/env node
// npm `bin` entry: runs the bundled CLI (build it first with `npm run build`).
import { createRequire } from 'node:module';

createRequire(import.meta.url)('../dist/pscache.cjs');
