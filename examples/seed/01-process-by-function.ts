// 方法一 (method one): create processes from a function, Python's
// `Process(target=f, args=('alvin',))`.
//
// Run it: node --import tsx examples/seed/01-process-by-function.ts

import { setTimeout as sleep } from 'node:timers/promises';
import { Process, isMain } from 'multiproc';

// The target is exported: functions cross processes by reference (module URL and export name),
// so each child imports this module and looks `f` up, as Python's spawn imports __main__.
export async function f(name: string): Promise<void> {
  await sleep(1000); // time.sleep(1)
  console.log('hello', name, ctime());
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Python's time.ctime(): the local time as 'Sat May  4 15:42:00 2019' (the day padded with a space). */
function ctime(date = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  return `${DAYS[date.getDay()]} ${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${time} ${date.getFullYear()}`;
}

// Python's `if __name__ == '__main__':`. Without it, every child that imports this module to find
// `f` would start three processes of its own.
if (isMain(import.meta)) {
  const pList: Process[] = [];
  for (let i = 0; i < 3; i++) { // start three processes: 3 CPUs are used now, each one runs one process
    const p = new Process({ target: f, args: ['alvin'] });
    pList.push(p);
    p.start();
  }

  for (const p of pList) {
    await p.join();
  }
  console.log('end');
}
