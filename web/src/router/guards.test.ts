import { describe, expect, it } from 'vitest'

import { decide, safeRedirect, type Destination } from './guards'

const to = (fullPath: string, meta: Destination['meta'], name = 'x', query: Record<string, unknown> = {}) =>
  ({ name, fullPath, meta, query })

describe('router guards', () => {
  it('sends a signed-out person to sign-in and remembers where they were going', () => {
    expect(decide(to('/parent-invite/t1', { auth: true }), { signedIn: false, profileComplete: null }))
      .toEqual({ name: 'sign-in', query: { redirect: '/parent-invite/t1' } })
  })

  it('lets public pages (an invite preview, help) open without signing in', () => {
    expect(decide(to('/invite/t1', {}), { signedIn: false, profileComplete: null })).toBe(true)
  })

  it('asks a new account for its profile first (ID-5), then goes on', () => {
    expect(decide(to('/profile', { auth: true }), { signedIn: true, profileComplete: false }))
      .toEqual({ name: 'welcome', query: { redirect: '/profile' } })
    expect(decide(to('/welcome', { auth: true }, 'welcome'), { signedIn: true, profileComplete: false })).toBe(true)
    expect(decide(to('/profile', { auth: true }), { signedIn: true, profileComplete: true })).toBe(true)
  })

  it('asks for the profile before a public page too: nobody joins a school by an invite nameless', () => {
    expect(decide(to('/invite/t1', {}, 'invite'), { signedIn: true, profileComplete: false }))
      .toEqual({ name: 'welcome', query: { redirect: '/invite/t1' } })
    expect(decide(to('/help', {}, 'help'), { signedIn: true, profileComplete: false })).toBe(true)
  })

  it('takes a signed-in person past sign-in to where they were going', () => {
    expect(decide(to('/sign-in', { guestOnly: true }, 'sign-in', { redirect: '/invite/t' }),
                  { signedIn: true, profileComplete: true })).toBe('/invite/t')
    expect(decide(to('/sign-in', { guestOnly: true }, 'sign-in'), { signedIn: true, profileComplete: true }))
      .toEqual({ name: 'home' })
  })

  it('never redirects to another site', () => {
    expect(safeRedirect('https://evil.example/')).toBeNull()
    expect(safeRedirect('//evil.example/')).toBeNull()
    expect(safeRedirect('/\\evil.example')).toBeNull()
    expect(safeRedirect('/profile?x=1')).toBe('/profile?x=1')
  })
})
