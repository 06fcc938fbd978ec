import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

// CH-1: a dialog read alone says why it is read-only (read_only_reason); lists never say it. Reading the list again
// (a reconnect does) must not give the dialog its box to write in and its call button back.
const listAnswer: { value: unknown[] } = { value: [] }
vi.mock('@/api/client', async () => (await import('./store.doubles')).listingClientModule(listAnswer))

const { live, doubleTheStoresNeighbours } = await import('./store.doubles')
doubleTheStoresNeighbours()
const { useChats } = await import('./store')

const dialog = { chat_id: 'd1', kind: 'direct', name: null, organization_id: null, member_ids: ['a', 'b'] }

describe('a read-only dialog', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    live.handler = null
  })

  it('stays read-only when the list is read again', async () => {
    const chats = useChats()
    chats.start()
    listAnswer.value = [{ chat: { ...dialog }, last_seq: 3, unread: 0 }]
    await chats.loadList()
    chats.item('d1')!.chat = { ...dialog, read_only_reason: 'direct.no_shared_chat' } as never // read alone
    listAnswer.value = [{ chat: { ...dialog }, last_seq: 4, unread: 1 }]
    await chats.loadList()
    expect(chats.item('d1')!.chat.read_only_reason).toBe('direct.no_shared_chat')
    expect(chats.item('d1')!.last_seq).toBe(4)
  })
})
