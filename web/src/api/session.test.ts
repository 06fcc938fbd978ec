import { beforeEach, describe, expect, it, vi } from 'vitest'

import {
  getTokens, needsRefresh, refreshTokens, reloadFromStorage, setTokens, type RefreshCall, type Tokens,
} from './session'

const base: Tokens = { access: 'a1', sessionId: 's1', userId: 'u1', expiresAt: Date.now() + 5_000 }
const fresh: RefreshCall = async () => ({ ok: true, access: 'a2', sessionId: 's1', expiresIn: 900 })

describe('the session: access token in memory, refresh token an httpOnly cookie', () => {
  beforeEach(() => {
    localStorage.clear()
    setTokens({ ...base })
  })

  it('keeps no token in localStorage, only who is signed in', () => {
    const stored = Object.keys(localStorage).map((key) => localStorage.getItem(key)).join(' ')
    expect(stored).not.toContain('a1')
    expect(JSON.parse(localStorage.getItem('sfera.signedIn') ?? '{}')).toEqual({ userId: 'u1', sessionId: 's1' })
  })

  it('refreshes once for any number of simultaneous callers, through the cookie (no token sent)', async () => {
    const call = vi.fn<RefreshCall>(fresh)
    const results = await Promise.all([refreshTokens(call), refreshTokens(call), refreshTokens(call)])
    expect(results).toEqual([true, true, true])
    expect(call).toHaveBeenCalledTimes(1)
    expect(call).toHaveBeenCalledWith(null)
    expect(getTokens()).toMatchObject({ access: 'a2', userId: 'u1' })
    expect(needsRefresh(getTokens()!)).toBe(false)
  })

  it('after a reload: signed in without an access token, which the first refresh brings', async () => {
    reloadFromStorage()
    expect(getTokens()).toEqual({ access: '', sessionId: 's1', userId: 'u1', expiresAt: 0 })
    expect(needsRefresh(getTokens()!)).toBe(true)
    expect(await refreshTokens(fresh)).toBe(true)
    expect(getTokens()?.access).toBe('a2')
  })

  it('ends the session when the API refuses the cookie (reused, revoked, expired)', async () => {
    const ended = await refreshTokens(async () => ({ ok: false, final: true }))
    expect(ended).toBe(false)
    expect(getTokens()).toBeNull()
    expect(localStorage.getItem('sfera.signedIn')).toBeNull()
  })

  it('keeps the session when the refresh got no answer (a network blip), to try again', async () => {
    expect(await refreshTokens(async () => ({ ok: false, final: false }))).toBe(false)
    expect(getTokens()).toMatchObject({ userId: 'u1', access: 'a1' })
  })

  it('does not refresh once another tab has signed out', async () => {
    localStorage.removeItem('sfera.signedIn')
    const call = vi.fn<RefreshCall>(fresh)
    expect(await refreshTokens(call)).toBe(false)
    expect(call).not.toHaveBeenCalled()
    expect(getTokens()).toBeNull()
  })

  it('moves tokens stored by an older client out of localStorage: its refresh token is spent once', async () => {
    localStorage.clear()
    localStorage.setItem('sfera.session', JSON.stringify({ access: 'a0', refresh: 'r0', sessionId: 's0',
                                                           userId: 'u0', expiresAt: Date.now() + 900_000 }))
    reloadFromStorage()
    expect(localStorage.getItem('sfera.session')).toBeNull()
    expect(getTokens()).toMatchObject({ access: '', userId: 'u0' })
    const call = vi.fn<RefreshCall>(async () => ({ ok: true, access: 'a1', sessionId: 's0', expiresIn: 900 }))
    expect(await refreshTokens(call)).toBe(true)
    expect(await refreshTokens(call)).toBe(true)
    expect(call.mock.calls).toEqual([['r0'], [null]])
  })
})
