import { describe, expect, it } from 'vitest'

import { callRoom } from './call'

describe("the SFU's room names in the call API's terms (CA-5)", () => {
  const id = 'b3393024-bad1-49b6-ae0e-5a8602d92132'

  it('names the main room main and a breakout room by its id in the call', () => {
    expect(callRoom(id, id)).toBe('main')
    expect(callRoom(`${id}/room-2`, id)).toBe('room-2')
  })

  it('leaves a name it does not know as it is', () => {
    expect(callRoom('main', id)).toBe('main')
    expect(callRoom('room-1', '')).toBe('room-1')
  })
})
