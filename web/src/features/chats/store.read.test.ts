import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

// CH-4, issue #17: a post is one event. MessagePosted with read_by_author is also its author's read mark up to its
// seq (no MessagesRead comes for it): the author's own unread count stops there, and others see the author (the
// organization when the post names no one, CH-5) as having read up to it.
const listAnswer: { value: unknown[] } = { value: [] }
const postAnswer: { value: unknown } = { value: null }
vi.mock('@/api/client', async () => (await import('./store.doubles')).apiClientModule({
  GET: vi.fn((path: string) => Promise.resolve(path === '/api/v1/chats' ? { data: listAnswer.value, response: new Response() }
    : path === '/api/v1/me/organizations' ? [] : { items: [], next_cursor: null })),
  POST: vi.fn(() => Promise.resolve(postAnswer.value)), PUT: vi.fn(() => Promise.resolve(null)), DELETE: vi.fn(),
}))

const { live, doubleTheStoresNeighbours } = await import('./store.doubles')
doubleTheStoresNeighbours()
const { useChats } = await import('./store')

function message(seq: number, author: string | null, extra: Record<string, unknown> = {}) {
  return { chat_id: 'c1', seq, author_id: author, on_behalf_of: null, text: `m${seq}`,
           posted_at: new Date(2026, 0, 1, 9, seq).toISOString(), ...extra }
}

const posted = (seq: number, author: string | null, extra: Record<string, unknown> = {}) =>
  ({ type: 'MessagePosted', data: message(seq, author, { read_by_author: true, ...extra }) })

async function started(lastSeq: number, unread: number) {
  const chats = useChats()
  chats.start()
  listAnswer.value = [{ chat: { chat_id: 'c1', kind: 'group', name: 'Класс', organization_id: 'o1', member_ids: [] },
                        last_seq: lastSeq, unread }]
  await chats.loadList()
  return chats
}

describe('a post implies its author read the chat up to it', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    live.handler = null
  })

  it("clears one's own unread count up to one's post", async () => {
    const chats = await started(4, 3)
    live.handler!(posted(5, 'me'))
    expect(chats.item('c1')!.unread).toBe(0)
    expect(chats.readBy.c1?.me).toBeUndefined() // one's own read is not another reader
  })

  it('shows the author as a reader up to their post to the others', async () => {
    const chats = await started(4, 0)
    live.handler!(posted(5, 'someone'))
    expect(chats.readBy.c1).toEqual({ someone: 5 })
    expect(chats.item('c1')!.unread).toBe(1) // someone else's post is unread here
    live.handler!({ type: 'MessagesRead', data: { chat_id: 'c1', user_id: 'someone', read_until: 5 } }) // a late mark-read
    live.handler!(posted(6, 'other'))
    expect(chats.readBy.c1).toEqual({ someone: 5, other: 6 })
  })

  it('reads as the organization when the post names no admin (CH-5)', async () => {
    const chats = await started(4, 0)
    live.handler!(posted(5, null, { on_behalf_of: 'o1' }))
    expect(chats.readBy.c1).toEqual({ organization: 5 })
  })

  it('implies nothing for a post that says nothing (a call recording, an older event)', async () => {
    const chats = await started(4, 0)
    live.handler!(posted(5, 'admin', { read_by_author: false }))
    live.handler!({ type: 'MessagePosted', data: message(6, 'someone') })
    expect(chats.readBy.c1).toBeUndefined()
  })

  it("clears one's unread count when one's own post on behalf of the school is answered", async () => {
    const chats = await started(4, 2)
    live.handler!(posted(5, null, { on_behalf_of: 'o1' })) // live first: the event names no one, not even me
    postAnswer.value = message(5, 'me', { on_behalf_of: 'o1', attachments: [], deleted: false })
    await chats.post('c1', { text: 'm5' })
    expect(chats.item('c1')!.unread).toBe(0)
  })
})
