import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

// CH-4: a chat's unread count. A list read after a message was saved on the server counts it already; the same
// message's live event arriving after that list must not count it a second time.
const listAnswer: { value: unknown[] } = { value: [] }
vi.mock('@/api/client', async () => (await import('./store.doubles')).listingClientModule(listAnswer))

const { live, doubleTheStoresNeighbours } = await import('./store.doubles')
doubleTheStoresNeighbours()
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
    live.handler = null
  })

  it('when the list that already counted it came before its event', async () => {
    const chats = useChats()
    chats.start()
    listAnswer.value = [listed(4, 0)]
    await chats.loadList()
    live.handler!(posted(4)) // the preview of seq 4 arrives live: the list had counted it (unread 0 as it said)
    expect(chats.item('c1')!.unread).toBe(0)
    listAnswer.value = [listed(5, 1)] // seq 5 saved, the list read again before its event came
    await chats.loadList()
    live.handler!(posted(5))
    expect(chats.item('c1')!.unread).toBe(1)
    live.handler!(posted(6)) // a new one, live
    expect(chats.item('c1')!.unread).toBe(2)
    live.handler!(posted(6)) // the same event twice
    expect(chats.item('c1')!.unread).toBe(2)
  })
})
