/** Internal test helper: the error `fn` throws, when the guard recognises it; fails the test otherwise. */
export function thrown<E>(fn: () => unknown, guard: (err: unknown) => err is E, what: string): E {
  try {
    fn();
  } catch (err) {
    if (guard(err)) return err;
    throw err;
  }
  throw new Error(`expected ${what}`);
}

/** Internal test helper: what `fn` throws, whatever it is; fails the test when it returns. */
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** Internal test helper: what the promise `fn` returns rejects with; fails the test when it resolves. */
export async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}
