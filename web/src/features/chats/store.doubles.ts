// What the chats store's unit tests (store.*.test.ts) put in place of its neighbours: the realtime client, the
// outbox, the session, names (doubleTheStoresNeighbours) and the API client's module around a test's own `api`
// (apiClientModule, for the test's hoisted vi.mock('@/api/client', ...)).
// `live.handler` is the store's listener on the realtime client: a test sends it events.
import { vi } from 'vitest'

export interface LiveEvent { type: string; data: unknown }
export const live: { handler: ((event: LiveEvent) => void) | null } = { handler: null }

export const realtimeModule = {
  RealtimeClient: class {
    on(h: (event: LiveEvent) => void) { live.handler = h; return () => undefined }
    onStatus() { return () => undefined }
    start() {}
    stop() {}
    follow() {}
    catchUp() { return Promise.resolve() }
  },
}

export const outboxModule = {
  Outbox: class {
    list() { return [] }
    onChange() {}
    onSent() {}
    flush() { return Promise.resolve() }
  },
}

/** api/client's `call`: openapi-fetch's answer ({data, response}) where a test gives one, else the data itself. */
export async function call(fn: () => Promise<unknown>) {
  const answer = await fn()
  return answer && typeof answer === 'object' && 'response' in answer ? (answer as unknown as { data: unknown }).data : answer
}

/** api/client's module with a test's own `api` (openapi-fetch's GET, POST, ...): for vi.mock('@/api/client', ...). */
export function apiClientModule(api: Record<string, unknown>) {
  return { api, call, refreshSession: vi.fn() }
}

/** An API whose chat list is whatever ``listAnswer`` holds when it is read (no schools, no messages). */
export function listingClientModule(listAnswer: { value: unknown[] }) {
  return apiClientModule({
    GET: vi.fn((path: string) => Promise.resolve(path === '/api/v1/chats' ? { data: listAnswer.value, response: new Response() }
      : path === '/api/v1/me/organizations' ? [] : { items: [], next_cursor: null })),
    POST: vi.fn(), PUT: vi.fn(() => Promise.resolve(null)), DELETE: vi.fn(),
  })
}

/** The chats store's other neighbours doubled for its next import (signed in as 'me', every name 'X', the realtime
 *  client and outbox above): a test file calls this, then `await import('./store')`. */
export function doubleTheStoresNeighbours(): void {
  vi.doMock('@/features/auth/store', () => ({ useSession: () => ({ tokens: { userId: 'me' } }) }))
  vi.doMock('@/features/people/profile', () => ({ fullName: () => 'X' }))
  vi.doMock('@/realtime/client', () => realtimeModule)
  vi.doMock('@/realtime/outbox', () => outboxModule)
}
