import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick } from 'vue'

import type { CursorPage } from './pager'
import { useSearch } from './search'

interface Asked {
  q: string
  cursor: string | null
  signal: AbortSignal
  resolve: (page: CursorPage<string>) => void
  reject: (e: unknown) => void
}

/** A search whose requests are answered by the test, in any order. */
function harness(options = {}) {
  const asked: Asked[] = []
  const scope = effectScope()
  const search = scope.run(() => useSearch<string>((q, cursor, signal) => new Promise((resolve, reject) => {
    asked.push({ q, cursor, signal, resolve, reject })
  }), { delay: 300, ...options }))!
  return { asked, search, scope }
}

async function type(search: { query: { value: string } }, text: string): Promise<void> {
  search.query.value = text
  await nextTick()
}

async function settle(): Promise<void> {
  await Promise.resolve()
  await Promise.resolve()
  await nextTick()
}

describe('a search as one types (issue #17)', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('asks once after a pause in typing, with the trimmed words', async () => {
    const { asked, search } = harness()
    await type(search, 'г')
    vi.advanceTimersByTime(100)
    await type(search, 'гим')
    vi.advanceTimersByTime(100)
    await type(search, 'гимназии ')
    expect(asked).toHaveLength(0)
    vi.advanceTimersByTime(299)
    expect(asked).toHaveLength(0)
    vi.advanceTimersByTime(1)
    expect(asked.map((a) => [a.q, a.cursor])).toEqual([['гимназии', null]])
    expect(search.loading.value).toBe(true)
    asked[0]!.resolve({ items: ['Гимназия №1'], next_cursor: null })
    await settle()
    expect(search.items.value).toEqual(['Гимназия №1'])
    expect(search.searched.value).toBe('гимназии')
    expect(search.loading.value).toBe(false)
    expect(search.nothing.value).toBe(false)
  })

  it('aborts the older request and drops its late answer', async () => {
    const { asked, search } = harness()
    await type(search, 'лицей')
    vi.advanceTimersByTime(300)
    await type(search, 'гимназия')
    vi.advanceTimersByTime(300)
    expect(asked.map((a) => a.q)).toEqual(['лицей', 'гимназия'])
    expect(asked[0]!.signal.aborted).toBe(true)
    expect(asked[1]!.signal.aborted).toBe(false)
    asked[1]!.resolve({ items: ['Гимназия №1'], next_cursor: null })
    await settle()
    asked[0]!.resolve({ items: ['Лицей №2'], next_cursor: null }) // the stale answer comes last
    await settle()
    expect(search.items.value).toEqual(['Гимназия №1'])
    expect(search.searched.value).toBe('гимназия')
    asked[0]!.reject(new Error('aborted')) // and an abort error of the stale one is not shown either
    await settle()
    expect(search.error.value).toBeNull()
  })

  it('says nothing was found, and clears (no request) when the words are erased', async () => {
    const { asked, search } = harness()
    await type(search, 'нетакой')
    vi.advanceTimersByTime(300)
    asked[0]!.resolve({ items: [], next_cursor: null })
    await settle()
    expect(search.nothing.value).toBe(true)
    await type(search, '   ')
    vi.advanceTimersByTime(1000)
    expect(asked).toHaveLength(1)
    expect(search.nothing.value).toBe(false)
    expect(search.loaded.value).toBe(false)
    expect(search.searched.value).toBe('')
  })

  it('pages "more" by next_cursor with the words searched, and retries the failed page', async () => {
    const { asked, search } = harness()
    await type(search, 'школа')
    void search.now() // Enter: at once, no pause
    expect(asked.map((a) => [a.q, a.cursor])).toEqual([['школа', null]])
    asked[0]!.resolve({ items: ['a', 'b'], next_cursor: 'c2' })
    await settle()
    expect(search.hasMore.value).toBe(true)
    void search.more()
    expect(asked[1]!.cursor).toBe('c2')
    asked[1]!.reject(new Error('offline'))
    await settle()
    expect(search.error.value).toBeInstanceOf(Error)
    expect(search.items.value).toEqual(['a', 'b']) // what was shown stays
    void search.retry()
    expect(asked.map((a) => [a.q, a.cursor])[2]).toEqual(['школа', 'c2'])
    asked[2]!.resolve({ items: ['c'], next_cursor: null })
    await settle()
    expect(search.items.value).toEqual(['a', 'b', 'c'])
    expect(search.hasMore.value).toBe(false)
    expect(search.error.value).toBeNull()
  })

  it('a failed new search shows its error, not the older list, and its retry asks the first page', async () => {
    const { asked, search } = harness()
    await type(search, 'лицей')
    vi.advanceTimersByTime(300)
    asked[0]!.resolve({ items: ['Лицей №2'], next_cursor: 'c2' })
    await settle()
    await type(search, 'гимназия')
    vi.advanceTimersByTime(300)
    asked[1]!.reject(new Error('offline'))
    await settle()
    expect(search.items.value).toEqual([])
    expect(search.error.value).toBeInstanceOf(Error)
    expect(search.nothing.value).toBe(false)
    void search.retry()
    expect([asked[2]!.q, asked[2]!.cursor]).toEqual(['гимназия', null])
  })

  it('drops a pending search when its scope ends', async () => {
    const { asked, search, scope } = harness()
    await type(search, 'лицей')
    scope.stop()
    vi.advanceTimersByTime(1000)
    expect(asked).toHaveLength(0)
  })
})
