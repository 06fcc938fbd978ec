import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

// Issue #17: calls puts each call on an SFU node and answers that node's socket; when the node dies the
// connection is lost, and joining again goes wherever the new answer says (another node), never a fixed URL.
const answers: Array<(value: unknown) => void> = []
vi.mock('@/api/client', () => ({
  api: { GET: vi.fn(), POST: vi.fn(), DELETE: vi.fn(), PUT: vi.fn() },
  call: () => new Promise((resolve) => answers.push(resolve)),
}))

type Listener = (event: { type: string; reason?: string }) => void
const connections: Array<{ sfuUrl: string; token: string; emit: Listener }> = []
vi.mock('@/media/call', () => ({
  brightness: () => 0,
  CallConnection: class {
    private listener: Listener = () => undefined
    constructor(options: { sfuUrl: string; token: string }) {
      connections.push({ sfuUrl: options.sfuUrl, token: options.token, emit: (e) => this.listener(e) })
    }
    on(listener: Listener): void {
      this.listener = listener
    }
    join(): void {}
    close(): void {}
    levels(): Promise<Record<string, number>> {
      return Promise.resolve({})
    }
  },
}))

const { useCall } = await import('./store')

function ticket(node: string) {
  return { call: { call_id: 'c1', participants: [] }, token: `token-for-${node}`, sfu_url: `ws://${node}/ws`,
           rights: ['subscribe'], ice_servers: [] }
}

async function answered(value: unknown): Promise<void> {
  await vi.waitFor(() => expect(answers.length).toBeGreaterThan(0))
  answers.shift()!(value)
}

describe('the call connects to the SFU node its join answer names', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    answers.length = 0
    connections.length = 0
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
  })

  it('and after its node is lost, joins again on the node of the new answer', async () => {
    const call = useCall()
    call.callId = 'c1'
    const first = call.join()
    await answered(ticket('sfu-1.example:8300'))
    await first
    expect(connections.map((c) => c.sfuUrl)).toEqual(['ws://sfu-1.example:8300/ws'])

    connections[0]!.emit({ type: 'closed', reason: 'lost' }) // the node was killed
    expect(call.phase).toBe('closed')
    expect(call.closedReason).toBe('lost')

    const again = call.join()
    await answered(ticket('sfu-2.example:8301'))
    await again
    expect(connections.map((c) => [c.sfuUrl, c.token])).toEqual([
      ['ws://sfu-1.example:8300/ws', 'token-for-sfu-1.example:8300'],
      ['ws://sfu-2.example:8301/ws', 'token-for-sfu-2.example:8301'],
    ])
    connections[1]!.emit({ type: 'closed', reason: 'left' })
    vi.useRealTimers()
  })
})
