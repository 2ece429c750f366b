#!/usr/bin/env node
// Entry point for the `earshot` command. The sources are TypeScript run through tsx, so there is
// no build step between a git checkout and a working CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
