import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

// CH-4: who read one's message. Each ask of a message's readers (its count, or its whole list) is answered when the
// test says, in any order; the store shows each kind (count, list) from the latest-sent ask that answered it.
interface Ask { limit: number; answer: (count: number, ids: string[]) => void }
const asks: Ask[] = []
const chatList: { value: unknown[] } = { value: [] }  // GET /chats (a live post comes into a chat the page lists)
vi.mock('@/api/client', async () => (await import('./store.doubles')).apiClientModule({
  GET: vi.fn((path: string, options?: { params: { query: { limit: number } } }) => {
    if (path === '/api/v1/chats/{chat_id}/messages/{seq}/readers') {
      return new Promise((resolve) => asks.push({
        limit: options!.params.query.limit,
        answer: (count, ids) => resolve({ count, items: ids.map((user_id) => ({ user_id })), next_cursor: null }),
      }))
    }
    if (path === '/api/v1/chats') return Promise.resolve({ data: chatList.value, response: new Response() })
    return Promise.resolve(path === '/api/v1/me/organizations' ? [] : { items: [], next_cursor: null })
  }),
  POST: vi.fn(), PUT: vi.fn(() => Promise.resolve(null)), DELETE: vi.fn(),
}))

/** Until the store has sent n asks (each leaves after the API client's answer unwrapping is imported). */
const sent = (n: number) => vi.waitFor(() => expect(asks).toHaveLength(n))

const { live, doubleTheStoresNeighbours } = await import('./store.doubles')
doubleTheStoresNeighbours()
const { useChats } = await import('./store')

beforeEach(() => {
  setActivePinia(createPinia())
  live.handler = null
  asks.length = 0
  chatList.value = []
})
afterEach(() => vi.useRealTimers())

describe("the readers of one's message (CH-4)", () => {
  it('shows a list answered after a later-sent count, with that later count', async () => {
    const chats = useChats()
    const list = chats.loadReaders('c1', 5, true)  // the list opened
    await sent(1)
    const count = chats.loadReaders('c1', 5)       // then the count asked (the message shown again)
    await sent(2)
    expect(asks.map((a) => a.limit)).toEqual([200, 1])
    asks[1]!.answer(2, [])                          // the count, sent second, answers first
    await count
    expect(chats.readers.c1?.[5]).toEqual({ count: 2, ids: null })
    asks[0]!.answer(1, ['a'])                       // the list, sent first, answers last: its names are the only list
    await list
    expect(chats.readers.c1?.[5]).toEqual({ count: 2, ids: ['a'] })
  })

  it('keeps a later list and a later count over earlier answers that come last', async () => {
    const chats = useChats()
    const firstList = chats.loadReaders('c1', 5, true)
    await sent(1)
    const firstCount = chats.loadReaders('c1', 5)
    await sent(2)
    const secondList = chats.loadReaders('c1', 5, true, true)
    await sent(3)
    const secondCount = chats.loadReaders('c1', 5, false, true)
    await sent(4)
    asks[3]!.answer(3, [])
    asks[2]!.answer(3, ['a', 'b', 'c'])
    await Promise.all([secondList, secondCount])
    asks[1]!.answer(1, [])
    asks[0]!.answer(1, ['a'])
    await Promise.all([firstList, firstCount])
    expect(chats.readers.c1?.[5]).toEqual({ count: 3, ids: ['a', 'b', 'c'] })
  })

  it('asks a list under way again after a read mark, and shows the later answer', async () => {
    vi.useFakeTimers()
    const chats = useChats()
    chats.start()
    const first = chats.loadReaders('c1', 5, true)
    await vi.advanceTimersByTimeAsync(0)
    live.handler!({ type: 'MessagesRead', data: { chat_id: 'c1', user_id: 'b', read_until: 5, read_from: 3 } })
    await vi.advanceTimersByTimeAsync(200)
    expect(asks.map((a) => a.limit)).toEqual([200, 200])  // asked again, not folded into the ask under way
    asks[1]!.answer(2, ['a', 'b'])
    await vi.advanceTimersByTimeAsync(0)
    asks[0]!.answer(1, ['a'])
    await first
    expect(chats.readers.c1?.[5]).toEqual({ count: 2, ids: ['a', 'b'] })
  })
})

describe("read marks ask again only for what they newly read (CH-4)", () => {
  it("asks for the counts of the messages a reader newly read, not of those it had read before", async () => {
    vi.useFakeTimers()
    const chats = useChats()
    chats.start()
    for (const seq of [1, 2, 3, 4, 5]) void chats.loadReaders('c1', seq)
    await vi.advanceTimersByTimeAsync(0)
    for (const ask of asks.splice(0)) ask.answer(0, [])
    await vi.advanceTimersByTimeAsync(0)
    const mark = (reader: string, until: number) =>
      live.handler!({ type: 'MessagesRead', data: { chat_id: 'c1', user_id: reader, read_until: until } })
    mark('b', 3)
    await vi.advanceTimersByTimeAsync(200)
    expect(asks).toHaveLength(3)  // 1, 2, 3: b read them
    for (const ask of asks.splice(0)) ask.answer(1, [])
    mark('b', 5)
    await vi.advanceTimersByTimeAsync(200)
    expect(asks).toHaveLength(2)  // 4 and 5 only: 1-3 counted b already
    for (const ask of asks.splice(0)) ask.answer(1, [])
    mark('b', 4)                    // a mark older than what b read: nothing new
    mark('c', 1)                    // another reader: only what it read
    await vi.advanceTimersByTimeAsync(200)
    expect(asks).toHaveLength(1)
    asks.splice(0)[0]!.answer(2, [])
    await vi.advanceTimersByTimeAsync(0)
    expect([1, 2, 3, 4, 5].map((seq) => chats.readers.c1?.[seq]?.count)).toEqual([2, 1, 1, 1, 1])
  })

  it("asks for what a reader's first mark newly read when the event says where its mark was (read_from)", async () => {
    vi.useFakeTimers()
    const chats = useChats()
    chats.start()
    chatList.value = [{ chat: { chat_id: 'c1', kind: 'group', name: 'Класс', organization_id: 'o1', member_ids: [] },
                        last_seq: 6, unread: 0 }]
    await chats.loadList()
    for (const seq of [1, 2, 3, 4, 5, 6]) void chats.loadReaders('c1', seq)
    await vi.advanceTimersByTimeAsync(0)
    for (const ask of asks.splice(0)) ask.answer(0, [])
    await vi.advanceTimersByTimeAsync(0)
    // b had read up to 3 before this page opened: its first mark seen here asks for 4 and 5 only, not 1-5
    live.handler!({ type: 'MessagesRead', data: { chat_id: 'c1', user_id: 'b', read_until: 5, read_from: 3 } })
    await vi.advanceTimersByTimeAsync(200)
    expect(asks).toHaveLength(2)
    for (const ask of asks.splice(0)) ask.answer(1, [])
    // c's post read the chat up to it for c, who had read up to 5: only 6 is asked again
    live.handler!({ type: 'MessagePosted', data: { chat_id: 'c1', seq: 7, message_id: 'm7', author_id: 'c',
                                                   text: 'hi', posted_at: '2026-12-01T10:00:00Z',
                                                   read_by_author: true, author_read_from: 5 } })
    await vi.advanceTimersByTimeAsync(200)
    expect(asks).toHaveLength(1)
    asks.splice(0)[0]!.answer(1, [])
    // a mark that does not say (stored before read_from was said, or concealed: CH-5) asks for all it may have read
    live.handler!({ type: 'MessagesRead', data: { chat_id: 'c1', user_id: 'd', read_until: 2, read_from: null } })
    await vi.advanceTimersByTimeAsync(200)
    expect(asks).toHaveLength(2)
  })

  it('asks again for all of them after a post on behalf of the organization (CH-5: its admin is not named)', async () => {
    vi.useFakeTimers()
    const chats = useChats()
    chats.start()
    chatList.value = [{ chat: { chat_id: 'c1', kind: 'organization', name: 'Школа', organization_id: 'o1',
                                member_ids: [] }, last_seq: 6, unread: 0 }]
    await chats.loadList()
    for (const seq of [1, 2, 3, 4, 5, 6]) void chats.loadReaders('c1', seq)
    await vi.advanceTimersByTimeAsync(0)
    for (const ask of asks.splice(0)) ask.answer(0, [])
    await vi.advanceTimersByTimeAsync(0)
    // the organization read up to 4 (one admin), then another admin, who had read up to 1, posts for it: 2-6 now
    // count that admin too, not only 5 and 6
    live.handler!({ type: 'MessagesRead', data: { chat_id: 'c1', user_id: null, read_until: 4, read_from: null } })
    await vi.advanceTimersByTimeAsync(200)
    for (const ask of asks.splice(0)) ask.answer(1, [])
    live.handler!({ type: 'MessagePosted', data: { chat_id: 'c1', seq: 7, message_id: 'm7', author_id: null,
                                                   on_behalf_of: 'o1', text: 'Линейка', read_by_author: true,
                                                   posted_at: '2026-12-01T10:00:00Z', author_read_from: null } })
    await vi.advanceTimersByTimeAsync(200)
    expect(asks).toHaveLength(6)
  })
})
