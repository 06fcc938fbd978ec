import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

// CH-4: a chat's unread count. A list read after a message was saved on the server counts it already; the same
// message's live event arriving after that list must not count it a second time.
const listAnswer: { value: unknown[] } = { value: [] }
vi.mock('@/api/client', () => ({
  api: {
    GET: vi.fn((path: string) => Promise.resolve(path === '/api/v1/chats' ? { data: listAnswer.value, response: new Response() }
      : path === '/api/v1/me/organizations' ? [] : { items: [], next_cursor: null })),
    POST: vi.fn(), PUT: vi.fn(() => Promise.resolve(null)), DELETE: vi.fn(),
  },
  // openapi-fetch's answer ({data, response}) where a test gives one (the paged chat list), else the data itself
  call: async (fn: () => Promise<unknown>) => {
    const answer = await fn()
    return answer && typeof answer === 'object' && 'response' in answer ? (answer as unknown as { data: unknown }).data : answer
  },
  refreshSession: vi.fn(),
}))
vi.mock('@/features/auth/store', () => ({ useSession: () => ({ tokens: { userId: 'me' } }) }))
vi.mock('@/features/people/profile', () => ({ fullName: () => 'X' }))
let handler: ((event: { type: string; data: unknown }) => void) | null = null
vi.mock('@/realtime/client', () => ({
  RealtimeClient: class {
    on(h: typeof handler) { handler = h; return () => undefined }
    onStatus() { return () => undefined }
    start() {}
    stop() {}
  },
}))
vi.mock('@/realtime/outbox', () => ({
  Outbox: class {
    list() { return [] }
    onChange() {}
    onSent() {}
    flush() { return Promise.resolve() }
  },
}))

const { useChats } = await import('./store')

function listed(lastSeq: number, unread: number) {
  return { chat: { chat_id: 'c1', kind: 'group', name: 'Класс', organization_id: 'o1', member_ids: [] },
           last_seq: lastSeq, unread }
}

function posted(seq: number) {
  return { type: 'MessagePosted', data: { chat_id: 'c1', seq, author_id: 'someone', text: `m${seq}`,
                                          posted_at: new Date(2026, 0, 1, 9, seq).toISOString() } }
}

describe('the chat list counts a new message once', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    handler = null
  })

  it('when the list that already counted it came before its event', async () => {
    const chats = useChats()
    chats.start()
    listAnswer.value = [listed(4, 0)]
    await chats.loadList()
    handler!(posted(4)) // the preview of seq 4 arrives live: the list had counted it (unread 0 as it said)
    expect(chats.item('c1')!.unread).toBe(0)
    listAnswer.value = [listed(5, 1)] // seq 5 saved, the list read again before its event came
    await chats.loadList()
    handler!(posted(5))
    expect(chats.item('c1')!.unread).toBe(1)
    handler!(posted(6)) // a new one, live
    expect(chats.item('c1')!.unread).toBe(2)
    handler!(posted(6)) // the same event twice
    expect(chats.item('c1')!.unread).toBe(2)
  })
})
