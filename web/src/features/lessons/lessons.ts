/**
 * One's lessons of today from the linked e-journals (GET /me/lessons, EJ-5, SC-13): the day's bounds in
 * the person's own time zone, and what each lesson offers (start its call, join the call under way).
 */
import type { Schemas } from '@/api/client'

export type Lesson = Schemas['MyLesson']

/** How far back a lesson that began yesterday evening may still be running after midnight. */
const RUNNING_LOOKBACK_MS = 3 * 3600_000

/** The local day around ``now`` as the API's from/to (ISO 8601 with the local offset); from a few hours
 * earlier just after midnight, so that a lesson begun yesterday evening and still running is found. */
export function todayRange(now: Date = new Date()): { from: string; to: string } {
  const start = new Date(Math.min(startOfDay(now).getTime(), now.getTime() - RUNNING_LOOKBACK_MS))
  const end = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1)
  return { from: withOffset(start), to: withOffset(end) }
}

/** Today's lessons: those ending today, and any whose call is still under way. */
export function todays(lessons: Lesson[], now: Date = new Date()): Lesson[] {
  const midnight = startOfDay(now).getTime()
  return lessons.filter((l) => l.call || Date.parse(l.ends_at) > midnight)
}

function startOfDay(now: Date): Date {
  return new Date(now.getFullYear(), now.getMonth(), now.getDate())
}

function withOffset(date: Date): string {
  const pad = (n: number) => String(Math.abs(n)).padStart(2, '0')
  const minutes = -date.getTimezoneOffset()
  const sign = minutes >= 0 ? '+' : '-'
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:`
    + `${pad(date.getMinutes())}:${pad(date.getSeconds())}${sign}${pad(Math.trunc(minutes / 60))}:${pad(minutes % 60)}`
}

/** What the person can do with a lesson now: join its call, start it (its teacher), or nothing. */
export function actionOf(lesson: Lesson): 'join' | 'start' | null {
  if (lesson.call && lesson.actions.includes('join')) return 'join'
  if (lesson.actions.includes('start')) return 'start'
  return null
}

/** Lessons under way (a call running) first, then by start time. */
export function ordered(lessons: Lesson[]): Lesson[] {
  return [...lessons].sort((a, b) => Number(Boolean(b.call)) - Number(Boolean(a.call))
    || Date.parse(a.starts_at) - Date.parse(b.starts_at))
}

/** "08:30–09:15" in the person's time zone. */
export function timeSpan(lesson: Lesson, locale: string): string {
  const format = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' })
  return `${format.format(new Date(lesson.starts_at))}–${format.format(new Date(lesson.ends_at))}`
}
