import { describe, expect, it } from 'vitest'

import { NAV, isActive } from './nav'

const item = (to: string) => NAV.find((n) => n.to === to)!

describe('the navigation: which destination a page belongs to', () => {
  it('marks home only on home, a section on all its pages', () => {
    expect(isActive(item('/'), '/')).toBe(true)
    expect(isActive(item('/'), '/schools')).toBe(false)
    expect(isActive(item('/schools'), '/schools/42/manage/members')).toBe(true)
    expect(isActive(item('/schools'), '/schoolsx')).toBe(false)
    expect(isActive(item('/chats'), '/chats/7')).toBe(true)
  })

  it('gives the phone 4 or 5 tabs (with "More") and puts every destination somewhere', () => {
    const primary = NAV.filter((n) => n.primary)
    expect(primary.length + 1).toBeGreaterThanOrEqual(4)
    expect(primary.length + 1).toBeLessThanOrEqual(5)
    expect(new Set(NAV.map((n) => n.to)).size).toBe(NAV.length)
  })
})
