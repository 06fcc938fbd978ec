import { describe, expect, it, vi } from 'vitest'

const GET = vi.fn()
vi.mock('@/api/client', () => ({
  api: { GET: (...args: unknown[]) => GET(...args) },
  call: async (send: () => Promise<{ data: unknown }>) => (await send()).data,
}))

const { reveal, searchMessages } = await import('./search')

/** A chat's history of `total` messages whose newest `shown` are loaded, paged back as the store does. */
function history(total: number, shown: number, deleted: number[] = []) {
  const all = Array.from({ length: total }, (_, seq) => ({ seq })).filter((m) => !deleted.includes(m.seq))
  const chats = {
    messages: { c1: all.slice(-shown) } as Record<string, { seq: number }[]>,
    older: { c1: true } as Record<string, boolean>,
    pages: [] as number[],
    async loadOlder(chatId: string, limit = 30): Promise<number> {
      const list = chats.messages[chatId]!
      chats.pages.push(limit)
      const earlier = all.filter((m) => m.seq < list[0]!.seq).slice(-limit)
      list.unshift(...earlier)
      chats.older[chatId] = earlier.length > 0 && earlier[0]!.seq > 0
      return earlier.length
    },
  }
  return chats
}

describe('opening a message a search found (issue #17)', () => {
  it('loads the history back to the message and a few before it, in pages of at most 200', async () => {
    const chats = history(1000, 30)
    expect(await reveal(chats, 'c1', 400)).toBe(true)
    const first = chats.messages.c1![0]!.seq
    expect(first).toBeLessThanOrEqual(395)
    expect(first).toBeGreaterThan(380)
    expect(chats.pages.every((n) => n <= 200)).toBe(true)
    expect(chats.messages.c1!.map((m) => m.seq)).toEqual(Array.from({ length: 1000 - first }, (_, i) => first + i))
  })

  it('asks nothing when the message is loaded already, and says so when it is gone (deleted since)', async () => {
    const loaded = history(100, 30)
    expect(await reveal(loaded, 'c1', 90)).toBe(true)
    expect(loaded.pages).toEqual([])
    const gone = history(100, 30, [40])
    expect(await reveal(gone, 'c1', 40)).toBe(false)
    expect(await reveal(history(3, 3), 'c1', 0)).toBe(true) // the very first message of a chat
  })

  it('searches the words (in one chat when given) with the cursor and the abort signal', async () => {
    GET.mockResolvedValue({ data: { items: [], next_cursor: null }, response: new Response() })
    const signal = new AbortController().signal
    await searchMessages('контрольной', 'c1', 'next', signal)
    await searchMessages('уроки', null, null, signal)
    expect(GET.mock.calls).toEqual([
      ['/api/v1/messages/search', { params: { query: { q: 'контрольной', limit: 20, chat_id: 'c1', cursor: 'next' } },
                                     signal }],
      ['/api/v1/messages/search', { params: { query: { q: 'уроки', limit: 20 } }, signal }],
    ])
  })
})
