import { beforeEach, describe, expect, it, vi } from 'vitest'

import { getTokens, needsRefresh, refreshTokens, setTokens, type RefreshCall, type Tokens } from './session'

const base: Tokens = { access: 'a1', refresh: 'r1', sessionId: 's1', userId: 'u1', expiresAt: Date.now() + 5_000 }

describe('the session: silent refresh with a rotating refresh token', () => {
  beforeEach(() => {
    localStorage.clear()
    setTokens({ ...base })
  })

  it('refreshes once for any number of simultaneous callers and stores the rotated token', async () => {
    const call = vi.fn<RefreshCall>(async () => ({ ok: true, access: 'a2', refresh: 'r2', sessionId: 's1', expiresIn: 900 }))
    const results = await Promise.all([refreshTokens(call), refreshTokens(call), refreshTokens(call)])
    expect(results).toEqual([true, true, true])
    expect(call).toHaveBeenCalledTimes(1)
    expect(call).toHaveBeenCalledWith('r1')
    expect(getTokens()).toMatchObject({ access: 'a2', refresh: 'r2' })
    expect(JSON.parse(localStorage.getItem('sfera.session') ?? '{}').refresh).toBe('r2')
    expect(needsRefresh(getTokens()!)).toBe(false)
  })

  it('ends the session when the API refuses the refresh token (reused, revoked, expired)', async () => {
    const ended = await refreshTokens(async () => ({ ok: false, final: true }))
    expect(ended).toBe(false)
    expect(getTokens()).toBeNull()
    expect(localStorage.getItem('sfera.session')).toBeNull()
  })

  it('keeps the tokens when the refresh got no answer (a network blip), to try again', async () => {
    expect(await refreshTokens(async () => ({ ok: false, final: false }))).toBe(false)
    expect(getTokens()).toMatchObject({ refresh: 'r1' })
  })

  it("adopts another tab's refresh instead of reusing the old token (reuse would end the session)", async () => {
    // Another tab rotated the token: storage holds r9, this tab still has r1 in memory.
    localStorage.setItem('sfera.session', JSON.stringify({ ...base, access: 'a9', refresh: 'r9',
                                                           expiresAt: Date.now() + 900_000 }))
    const call = vi.fn<RefreshCall>()
    expect(await refreshTokens(call)).toBe(true)
    expect(call).not.toHaveBeenCalled()
    expect(getTokens()).toMatchObject({ access: 'a9', refresh: 'r9' })
  })
})
