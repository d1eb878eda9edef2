// Exits of processes that are not this process's children (a Type=forking daemon, a main process adopted from a
// previous supervisor): no exit event comes for them, so one timer looks at all of them, rather than a timer each
// (500 adopted units polled every 50 ms each cost a tenth of a core).
const POLL_MS = 100;

interface Waiter {
  gone: () => boolean;
  resolve: () => void;
}

const waiters = new Set<Waiter>();
let timer: ReturnType<typeof setInterval> | null = null;

/** Resolves once `gone()` is true, checked now and every POLL_MS. */
export function untilGone(gone: () => boolean): Promise<void> {
  if (gone()) return Promise.resolve();
  return new Promise((resolve) => {
    waiters.add({ gone, resolve });
    timer ??= setInterval(check, POLL_MS);
  });
}

function check(): void {
  for (const w of waiters) {
    if (!w.gone()) continue;
    waiters.delete(w);
    w.resolve();
  }
  if (waiters.size === 0 && timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}
