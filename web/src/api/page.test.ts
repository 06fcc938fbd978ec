import { describe, expect, it, vi } from 'vitest'

vi.mock('./client', () => ({
  call: async (send: () => Promise<{ data?: unknown }>) => (await send()).data,
}))

const { callPage } = await import('./page')

// Issue #17: a list that keeps its array as the body gives the next page's cursor in X-Next-Cursor.
describe('a page of a list with the cursor in a header', () => {
  it('reads the items and the next cursor; none on the last page', async () => {
    const answer = (headers: Record<string, string>) => async () => ({ data: [1, 2], response: new Response(null, { headers }) })
    expect(await callPage(answer({ 'X-Next-Cursor': 'cDE6czU' }))).toEqual({ items: [1, 2], next_cursor: 'cDE6czU' })
    expect(await callPage(answer({}))).toEqual({ items: [1, 2], next_cursor: null })
  })
})
