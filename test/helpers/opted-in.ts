/** Internal test helper: preference stores for tests of mail that needs one. */
import { memoryPreferenceStore, type PreferenceStore } from '../../src/preferences.js';

/**
 * A memory store in which everyone has opted in to marketing mail until they choose otherwise
 * (product mail is on by default anyway): for tests of what unsubscribe adds to mail that goes.
 */
export function optedIn(): PreferenceStore {
  const store = memoryPreferenceStore();
  return {
    ...store,
    get: async (address, category) =>
      (await store.get(address, category)) ?? {
        address: address.toLowerCase(),
        category,
        allowed: true,
        at: new Date(0),
        source: 'test',
      },
  };
}
