import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { RealtimeClient, type CatchUpPage, type RealtimeEvent, type SocketLike } from './client'
import { Outbox, newUuid } from './outbox'

class FakeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null
  onmessage: SocketLike['onmessage'] = null
  onclose: SocketLike['onclose'] = null
  onerror: SocketLike['onerror'] = null
  sent: string[] = []
  closed = false
  constructor(readonly url: string) {}
  send(data: string): void {
    this.sent.push(data)
  }
  close(): void {
    this.closed = true
  }
  push(message: unknown): void {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) })
  }
  drop(): void {
    this.onclose?.({ code: 1006 })
  }
}

const posted = (seq: number, chat = 'c1') => ({ type: 'MessagePosted', data: { chat_id: chat, seq, text: `m${seq}` } })

function setup(history: Record<string, number[]> = {}) {
  const sockets: FakeSocket[] = []
  const events: RealtimeEvent[] = []
  const statuses: string[] = []
  let token = 0
  const fetchAfter = vi.fn(async (chatId: string, after: number): Promise<CatchUpPage> => {
    const all = history[chatId] ?? []
    const items = all.filter((s) => s > after).slice(0, 2).map((seq) => ({ seq, text: `m${seq}` }))
    return { items, last_seq: all.length ? Math.max(...all) : -1 }
  })
  const client = new RealtimeClient({
    url: (t) => `ws://x/api/v1/realtime?access_token=${t}`,
    token: async () => `t${++token}`,
    fetchAfter,
    socket: (url) => {
      const socket = new FakeSocket(url)
      sockets.push(socket)
      return socket
    },
    backoff: { base: 100, max: 1000 },
    heartbeat: { every: 1000, timeout: 500 },
    random: () => 1,
  })
  client.on((e) => events.push(e))
  client.onStatus((s) => statuses.push(s))
  return { client, sockets, events, statuses, fetchAfter }
}

const seqs = (events: RealtimeEvent[]) => events.filter((e) => e.type === 'MessagePosted').map((e) => e.data.seq)

describe('the realtime client: reconnect with back-off and catch-up by seq', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('connects with a fresh token, is online on ready, and passes pushed events on', async () => {
    const { client, sockets, events, statuses } = setup()
    client.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(sockets[0]!.url).toBe('ws://x/api/v1/realtime?access_token=t1')
    sockets[0]!.push({ type: 'ready', user_id: 'u1' })
    expect(statuses).toEqual(['connecting', 'online'])
    sockets[0]!.push({ type: 'ChatCreated', data: { chat_id: 'c9' } })
    expect(events).toEqual([{ type: 'ChatCreated', data: { chat_id: 'c9' } }])
  })

  it('reconnects after a drop with a doubling back-off and a new token, then catches up what it missed', async () => {
    const { client, sockets, events, statuses, fetchAfter } = setup({ c1: [0, 1, 2, 3, 4, 5, 6] })
    client.follow('c1', 2)
    client.start()
    await vi.advanceTimersByTimeAsync(0)
    sockets[0]!.push({ type: 'ready' })
    sockets[0]!.push(posted(3))
    sockets[0]!.drop()
    expect(statuses.at(-1)).toBe('offline')
    await vi.advanceTimersByTimeAsync(99)
    expect(sockets).toHaveLength(1) // waits the back-off first
    await vi.advanceTimersByTimeAsync(1)
    expect(sockets).toHaveLength(2)
    sockets[1]!.drop() // fails again: the wait doubles
    await vi.advanceTimersByTimeAsync(199)
    expect(sockets).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(sockets).toHaveLength(3)
    expect(sockets[2]!.url).toContain('access_token=t3')
    sockets[2]!.push({ type: 'ready' })
    await vi.advanceTimersByTimeAsync(0)
    // 4..6 were posted while offline: fetched after 3, two pages, nothing twice
    expect(fetchAfter.mock.calls).toEqual([['c1', 3], ['c1', 5]])
    expect(seqs(events)).toEqual([3, 4, 5, 6])
    expect(events.map((e) => e.type)).toContain('reconnected')
    expect(client.lastSeq('c1')).toBe(6)
    expect(statuses.at(-1)).toBe('online')
  })

  it('drops a pushed message it already has and fetches a gap before going on', async () => {
    const { client, sockets, events, fetchAfter } = setup({ c1: [0, 1, 2, 3, 4, 5] })
    client.follow('c1', 1)
    client.start()
    await vi.advanceTimersByTimeAsync(0)
    sockets[0]!.push({ type: 'ready' })
    sockets[0]!.push(posted(1)) // already shown
    sockets[0]!.push(posted(2))
    sockets[0]!.push(posted(4)) // 3 is missing: the history has it
    await vi.advanceTimersByTimeAsync(0)
    sockets[0]!.push(posted(4)) // pushed late: already caught up
    sockets[0]!.push(posted(6))
    expect(fetchAfter).toHaveBeenCalledWith('c1', 2)
    expect(seqs(events)).toEqual([2, 3, 4, 5, 6])
  })

  it('notices a dead connection by its missing pong and reconnects', async () => {
    const { client, sockets } = setup()
    client.start()
    await vi.advanceTimersByTimeAsync(0)
    sockets[0]!.push({ type: 'ready' })
    await vi.advanceTimersByTimeAsync(1000)
    expect(sockets[0]!.sent).toEqual(['ping'])
    sockets[0]!.push('pong')
    await vi.advanceTimersByTimeAsync(1000)
    expect(sockets[0]!.sent).toEqual(['ping', 'ping'])
    await vi.advanceTimersByTimeAsync(500) // no pong this time
    expect(sockets[0]!.closed).toBe(true)
    expect(client.status).toBe('offline')
    await vi.advanceTimersByTimeAsync(100)
    expect(sockets).toHaveLength(2)
  })

  it('stops for good when the session was signed out, and on stop()', async () => {
    const { client, sockets } = setup()
    client.start()
    await vi.advanceTimersByTimeAsync(0)
    sockets[0]!.push({ type: 'error', error: { code: 'auth.session_ended' } })
    sockets[0]!.drop()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(client.status).toBe('stopped')
    expect(sockets).toHaveLength(1)
    client.start()
    await vi.advanceTimersByTimeAsync(0)
    client.stop()
    expect(sockets[1]!.closed).toBe(true)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(sockets).toHaveLength(2)
  })

  it('reconnects at once when asked (the browser is online again)', async () => {
    const { client, sockets } = setup()
    client.start()
    await vi.advanceTimersByTimeAsync(0)
    sockets[0]!.drop()
    await vi.advanceTimersByTimeAsync(0)
    client.retryNow()
    await vi.advanceTimersByTimeAsync(0)
    expect(sockets).toHaveLength(2)
  })
})

describe('the outbox: nothing typed is lost', () => {
  const network = new Error('network')

  it('keeps messages across a reload while the network fails, then sends them in order', async () => {
    localStorage.clear()
    let online = false
    const sent: string[] = []
    const make = () => new Outbox<{ seq: number }>({
      key: 'outbox.u1',
      send: async (p) => {
        if (!online) throw network
        sent.push(p.text)
        return { seq: sent.length }
      },
      isNetworkError: (e) => e === network,
    })
    const first = make()
    first.add('c1', 'one')
    first.add('c1', 'two')
    await first.flush()
    expect(first.list('c1').map((p) => p.text)).toEqual(['one', 'two'])
    const reloaded = make() // the tab was closed and opened again
    expect(reloaded.list().map((p) => p.text)).toEqual(['one', 'two'])
    const results: number[] = []
    reloaded.onSent((_p, r) => results.push(r.seq))
    online = true
    await reloaded.flush()
    expect(sent).toEqual(['one', 'two'])
    expect(results).toEqual([1, 2])
    expect(reloaded.list()).toEqual([])
    expect(localStorage.getItem('outbox.u1')).toBeNull()
  })

  it('keeps a refused message with its code and goes on with the next', async () => {
    localStorage.clear()
    const box = new Outbox({
      key: 'outbox.u2',
      send: async (p) => {
        if (p.text === 'bad') throw Object.assign(new Error('refused'), { code: 'message.invalid_text' })
        return p.text
      },
      isNetworkError: () => false,
      errorCode: (e) => (e as { code: string }).code,
    })
    box.add('c1', 'bad')
    box.add('c1', 'good')
    await box.flush()
    await box.flush()
    expect(box.list()).toMatchObject([{ text: 'bad', failed: 'message.invalid_text' }])
  })

  it('sends each message with the client_message_id it got when typed, on every attempt and after a reload', async () => {
    localStorage.clear()
    const attempts: [string, string][] = []
    let answerLost = true
    const make = () => new Outbox<string>({
      key: 'outbox.u3',
      send: async (p) => {
        attempts.push([p.text, p.clientMessageId])
        if (answerLost) throw network // the API posted it, but its answer never came back
        return p.text
      },
      isNetworkError: (e) => e === network,
    })
    const first = make()
    first.add('c1', 'one')
    first.add('c1', 'two')
    await first.flush()
    await first.flush()
    const reloaded = make()
    answerLost = false
    await reloaded.flush()
    const keys = attempts.map(([, key]) => key)
    expect(attempts.map(([text]) => text)).toEqual(['one', 'one', 'one', 'two'])
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(new Set(keys.slice(0, 3)).size).toBe(1)
    expect(keys[3]).not.toBe(keys[0])
  })

  it('makes v4 UUIDs without crypto.randomUUID too (a page served over plain http has none)', () => {
    vi.stubGlobal('crypto', { getRandomValues: globalThis.crypto.getRandomValues.bind(globalThis.crypto) })
    try {
      expect(globalThis.crypto.randomUUID).toBeUndefined()
      const made = [newUuid(), newUuid()]
      for (const id of made) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      expect(made[0]).not.toBe(made[1])
    } finally {
      vi.unstubAllGlobals()
    }
  })

  it('gives a queue kept by an older client its keys once, and keeps them', () => {
    localStorage.clear()
    localStorage.setItem('outbox.u4', JSON.stringify([{ id: 'local-1', chatId: 'c1', text: 'old', replyTo: null,
                                                         createdAt: 1 }]))
    const make = () => new Outbox({ key: 'outbox.u4', send: async () => null, isNetworkError: () => true })
    const key = make().list()[0]?.clientMessageId
    expect(key).toMatch(/^[0-9a-f-]{36}$/)
    expect(make().list()[0]?.clientMessageId).toBe(key)
  })
})
