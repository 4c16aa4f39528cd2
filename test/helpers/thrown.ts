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
