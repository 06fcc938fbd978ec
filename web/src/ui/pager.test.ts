import { describe, expect, it } from 'vitest'

import { useAction } from './action'
import { useCursorList } from './pager'

describe('lists a page at a time with the API cursors', () => {
  it('appends pages while there is a cursor, and starts over on reload', async () => {
    const asked: (string | null)[] = []
    const pages: Record<string, { items: number[]; next_cursor: string | null }> = {
      first: { items: [1, 2], next_cursor: 'c2' },
      c2: { items: [3], next_cursor: null },
    }
    const list = useCursorList(async (cursor) => {
      asked.push(cursor)
      return pages[cursor ?? 'first']!
    })
    await list.reload()
    expect(list.items.value).toEqual([1, 2])
    expect(list.hasMore.value).toBe(true)
    await list.more()
    expect(list.items.value).toEqual([1, 2, 3])
    expect(list.hasMore.value).toBe(false)
    await list.reload()
    expect(list.items.value).toEqual([1, 2])
    expect(asked).toEqual([null, 'c2', null])
  })

  it('keeps what was shown when a page fails, and asks for the same page again', async () => {
    let fail = false
    const asked: (string | null)[] = []
    const list = useCursorList(async (cursor) => {
      asked.push(cursor)
      if (fail) throw new Error('offline')
      return cursor ? { items: ['b'], next_cursor: null } : { items: ['a'], next_cursor: 'next' }
    })
    await list.reload()
    fail = true
    await list.more()
    expect(list.error.value).toBeInstanceOf(Error)
    expect(list.items.value).toEqual(['a'])
    fail = false
    await list.retry()
    expect(list.items.value).toEqual(['a', 'b'])
    expect(asked).toEqual([null, 'next', 'next'])
  })
})

describe('a list that pages by X-Next-Cursor', () => {
  it('shows an entry added meanwhile once, when a later page has it too (issue #17)', async () => {
    const list = useCursorList(async (cursor) => (cursor ? { items: [{ id: 3 }, { id: 4 }], next_cursor: null }
      : { items: [{ id: 1 }, { id: 2 }], next_cursor: 'two' }), { key: (i) => i.id })
    await list.reload()
    list.items.value = [{ id: 4 }, ...list.items.value] // made on this page
    await list.more()
    expect(list.items.value.map((i) => i.id)).toEqual([4, 1, 2, 3])
  })
})

describe('an action that failed can be retried', () => {
  it('says it failed, then runs again with the same arguments', async () => {
    const calls: string[] = []
    let fail = true
    const action = useAction(async (name: string) => {
      calls.push(name)
      if (fail) throw new Error('network')
    })
    expect(await action.run('save')).toBe(false)
    expect(action.error.value).toBeInstanceOf(Error)
    fail = false
    action.retry()
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(action.error.value).toBeNull()
    expect(calls).toEqual(['save', 'save'])
  })
})
