/**
 * The list routes that page by `?limit=&cursor=` and keep the list's array as the body (the chat list, the inbox,
 * school's classes, invites, join requests, documents, articles, channels): the next page's cursor comes in the
 * `X-Next-Cursor` header, none on the last page. `callPage` makes one such answer a `CursorPage` (what
 * `useCursorList` reads), through `call` (token, refresh, errors).
 */
import type { CursorPage } from '@/ui/pager'

import { call } from './client'

export const NEXT_CURSOR = 'X-Next-Cursor'
/** a page of a list on screen: a phone shows about ten rows, a desktop about twenty */
export const LIST_PAGE = 50

interface Answer<T> {
  data?: T[]
  error?: unknown
  response: Response
}

export async function callPage<T>(send: () => Promise<Answer<T>>): Promise<CursorPage<T>> {
  let next: string | null = null
  const items = await call(async () => {
    const answer = await send()
    next = answer.response.headers.get(NEXT_CURSOR)
    return answer
  })
  return { items, next_cursor: next || null }
}
