import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

import type { CallInfo } from './store'

const answers: Array<(view: unknown) => void> = []
vi.mock('@/api/client', () => ({
  api: { GET: vi.fn(), POST: vi.fn(), DELETE: vi.fn(), PUT: vi.fn() },
  call: () => new Promise((resolve) => answers.push(resolve)),
}))

const { useCall } = await import('./store')
const view = (recording: boolean) => ({ call_id: 'c1', recording }) as unknown as CallInfo

describe('the call store keeps the newest view of the call', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    answers.length = 0
  })

  it("drops a poll's answer that comes after an action's view (CA-6: recording started, then a stale 'not recording')", async () => {
    const call = useCall()
    call.callId = 'c1'
    const polled = call.loadInfo() // a poll on its way when the admin starts recording
    call.showInfo(view(true)) // what POST /recording returned
    answers[0]!(view(false))
    await polled
    expect(call.info?.recording).toBe(true)
  })

  it('keeps the later of two reads', async () => {
    const call = useCall()
    call.callId = 'c1'
    const first = call.loadInfo()
    const second = call.loadInfo()
    answers[1]!(view(true))
    await second
    answers[0]!(view(false))
    await first
    expect(call.info?.recording).toBe(true)
  })
})
