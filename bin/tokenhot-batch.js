#!/usr/bin/env node
// The installed command runs the compiled code (npm ci / npm install build it via `prepare`).
import { main } from '../dist/src/cli/program.js';

process.exit(await main());
