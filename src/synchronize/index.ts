// Python's synchronize module: locks, semaphores, events, conditions and barriers in shared memory.
export { Lock, RLock } from './lock.ts';
export { Semaphore, BoundedSemaphore, SEM_VALUE_MAX } from './semaphore.ts';
export { Event } from './event.ts';
export { Condition } from './condition.ts';
export { Barrier } from './barrier.ts';
