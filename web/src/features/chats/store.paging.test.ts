import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

// Issue #17: the chat list comes a page at a time (?limit=&cursor=, the next cursor in X-Next-Cursor); live events
// still bring a chat further down (or new) to the top, and a chat one left leaves the list.
interface Listed { chat: { chat_id: string; kind: string; name: string; organization_id: string; member_ids: string[] };
                   last_seq: number; unread: number }
const server: { chats: Listed[]; asked: { limit?: number; cursor?: string }[]; gone: Set<string> } = {
  chats: [], asked: [], gone: new Set() }
const chat = (n: number) => ({ chat_id: `c${n}`, kind: 'group', name: `Чат ${n}`, organization_id: 'o1', member_ids: ['me'] })

function page(query: { limit?: number; cursor?: string }) {
  server.asked.push(query)
  const from = query.cursor ? Number(query.cursor) : 0
  const to = from + (query.limit ?? server.chats.length)
  const headers = new Headers(to < server.chats.length ? { 'X-Next-Cursor': String(to) } : {})
  return { data: server.chats.slice(from, to), response: new Response(null, { headers }) }
}

vi.mock('@/api/client', async () => (await import('./store.doubles')).apiClientModule({
  GET: vi.fn((path: string, init?: { params?: { query?: Record<string, unknown>; path?: { chat_id?: string } } }) => {
    if (path === '/api/v1/chats') return Promise.resolve(page(init?.params?.query ?? {}))
    if (path === '/api/v1/me/organizations') return Promise.resolve([])
    if (path === '/api/v1/chats/{chat_id}') {
      const id = init!.params!.path!.chat_id!
      if (server.gone.has(id)) {
        return import('@/api/errors').then(({ ApiError }) => Promise.reject(new ApiError(403, { code: 'chat.members_only' })))
      }
      return Promise.resolve({ ...chat(Number(id.slice(1))), name: `Чат ${id}` })
    }
    return Promise.resolve({ items: [], next_cursor: null, last_seq: -1 })
  }),
  POST: vi.fn(), PUT: vi.fn(() => Promise.resolve(null)), DELETE: vi.fn(),
}))

const { live, doubleTheStoresNeighbours } = await import('./store.doubles')
doubleTheStoresNeighbours()
const { useChats, CHAT_PAGE } = await import('./store')
const flush = () => new Promise((resolve) => setTimeout(resolve, 0))
const ids = (chats: ReturnType<typeof useChats>) => chats.items.map((i) => i.chat.chat_id)

describe('the chat list a page at a time', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    live.handler = null
    server.chats = Array.from({ length: 120 }, (_, n) => ({ chat: chat(n), last_seq: -1, unread: 0 }))
    server.asked = []
    server.gone = new Set()
  })

  it('asks a page, then the next ones to the last chat, none twice', async () => {
    const chats = useChats()
    await chats.loadList()
    expect(server.asked).toEqual([{ limit: CHAT_PAGE }])
    expect(chats.items).toHaveLength(CHAT_PAGE)
    expect(chats.hasMoreChats).toBe(true)
    await Promise.all([chats.loadMore(), chats.loadMore()]) // a second ask while one is on its way waits
    expect(server.asked).toHaveLength(2)
    await chats.loadMore()
    expect(chats.hasMoreChats).toBe(false)
    expect(ids(chats)).toEqual(server.chats.map((c) => c.chat.chat_id))
    await chats.loadMore() // nothing more to ask
    expect(server.asked).toEqual([{ limit: 50 }, { limit: 50, cursor: '50' }, { limit: 50, cursor: '100' }])
    await chats.loadList() // the list again (a reconnect): as long as what was shown
    expect(server.asked.at(-1)).toEqual({ limit: 120 })
    expect(ids(chats)).toHaveLength(120)
  })

  it('a message in a chat further down than the pages shown brings it to the top, counted unread', async () => {
    const chats = useChats()
    chats.start()
    await chats.loadList()
    live.handler!({ type: 'MessagePosted', data: { chat_id: 'c99', seq: 7, author_id: 'someone', text: 'Привет',
                                              posted_at: new Date().toISOString() } })
    await flush()
    await flush()
    expect(ids(chats)[0]).toBe('c99')
    expect(chats.item('c99')).toMatchObject({ last_seq: 7, unread: 1 })
    expect(chats.items).toHaveLength(CHAT_PAGE + 1)
    await chats.loadMore() // its page later does not show it twice
    await chats.loadMore()
    expect(ids(chats).filter((id) => id === 'c99')).toHaveLength(1)
  })

  it('a new chat comes to the top; a chat one was removed from leaves', async () => {
    const chats = useChats()
    chats.start()
    await chats.loadList()
    live.handler!({ type: 'ChatCreated', data: { chat_id: 'c500' } })
    await flush()
    expect(ids(chats)[0]).toBe('c500')
    live.handler!({ type: 'ChatMembersChanged', data: { chat_id: 'c3', added: [], removed: ['me'] } })
    expect(ids(chats)).not.toContain('c3')
    server.gone.add('c4')
    live.handler!({ type: 'ChatUpdated', data: { chat_id: 'c4' } })
    await flush()
    expect(ids(chats)).not.toContain('c4')
  })
})
