// 方法二 (method two): create processes by subclassing Process and overriding run().
//
// Run it: node --import tsx examples/seed/02-process-by-subclass.ts

import { setTimeout as sleep } from 'node:timers/promises';
import { Process, isMain } from 'multiproc';

// Exported, like a function target: the child imports this module and finds the class by name.
// Its own fields travel to the child by structured clone; its constructor does not run again there.
export class MyProcess extends Process {
  // constructor() {
  //   super();
  //   // this.name = name;
  // }

  override async run(): Promise<void> {
    await sleep(1000); // time.sleep(1)
    console.log('hello', this.name, ctime()); // this.name is the process name
  }
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Python's time.ctime(): the local time as 'Sat May  4 15:42:00 2019' (the day padded with a space). */
function ctime(date = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  return `${DAYS[date.getDay()]} ${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${time} ${date.getFullYear()}`;
}

if (isMain(import.meta)) {
  const pList: MyProcess[] = [];

  for (let i = 0; i < 3; i++) {
    const p = new MyProcess();
    // p.daemon = true; // make it a daemon process
    p.start();
    pList.push(p);
  }

  for (const p of pList) {
    await p.join(); // if the child has not finished yet, the main process waits here and goes no further
  }

  console.log('end');
}

// Output:
// hello MyProcess-1 Sat May  4 15:42:00 2019
// hello MyProcess-2 Sat May  4 15:42:00 2019
// hello MyProcess-3 Sat May  4 15:42:00 2019
// end
