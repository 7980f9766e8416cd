// The entry script of every child process and worker thread (bootstrap/location.ts finds it).

import { bootChild } from './boot.ts';

await bootChild();
