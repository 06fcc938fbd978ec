import { describe, expect, it } from 'vitest'

import { actionOf, ordered, todayRange, todays, type Lesson } from './lessons'

const lesson = (over: Partial<Lesson>): Lesson => ({
  lesson_id: 'l', provider_id: 'p', external_lesson_id: 'x', class_id: 'c', class_title: '7А', subject: 'Алгебра',
  starts_at: '2026-09-01T08:00:00+03:00', ends_at: '2026-09-01T08:45:00+03:00', remote: true, published: true,
  state: 'scheduled', teaching: false, call: null, actions: [], ...over,
})
const running = { call_id: 'k', title: 'Алгебра', started_at: null, started_by: 't', may_join: true }

describe('today\'s lessons (EJ-5, SC-13)', () => {
  it('asks for the local day, from its midnight to the next', () => {
    const { from, to } = todayRange(new Date(2026, 8, 1, 15, 30))
    expect(new Date(from).getTime()).toBe(new Date(2026, 8, 1).getTime())
    expect(new Date(to).getTime()).toBe(new Date(2026, 8, 2).getTime())
    expect(from).toMatch(/^2026-09-01T00:00:00[+-]\d\d:\d\d$/)
  })

  it('just after midnight also finds the lesson begun yesterday evening and still running', () => {
    const now = new Date(2026, 8, 2, 0, 10)
    expect(new Date(todayRange(now).from).getTime()).toBe(new Date(2026, 8, 1, 21, 10).getTime())
    const night = (ends: Date, call: boolean) => lesson({ ends_at: ends.toISOString(), call: call ? running : null })
    const ended = night(new Date(2026, 8, 1, 22, 0), false)
    const endsAfterMidnight = night(new Date(2026, 8, 2, 0, 30), false)
    const overrunning = night(new Date(2026, 8, 1, 23, 45), true)
    expect(todays([ended, endsAfterMidnight, overrunning], now)).toEqual([endsAfterMidnight, overrunning])
  })

  it('offers join when the call is under way, start to its teacher, else nothing', () => {
    expect(actionOf(lesson({ call: running, actions: ['join'] }))).toBe('join')
    expect(actionOf(lesson({ teaching: true, actions: ['start'] }))).toBe('start')
    expect(actionOf(lesson({ actions: [] }))).toBeNull()
    expect(actionOf(lesson({ call: { ...running, may_join: false }, actions: [] }))).toBeNull()
  })

  it('puts the lessons under way first, then by time', () => {
    const early = lesson({ lesson_id: 'early', starts_at: '2026-09-01T08:00:00+03:00' })
    const late = lesson({ lesson_id: 'late', starts_at: '2026-09-01T10:00:00+03:00' })
    const now = lesson({ lesson_id: 'now', starts_at: '2026-09-01T09:00:00+03:00', call: running })
    expect(ordered([late, early, now]).map((l) => l.lesson_id)).toEqual(['now', 'early', 'late'])
  })
})
