/**
 * The chat list's name filter (issue #17): the list pages, so the box above it asks the server
 * (`GET /chats?q=`: one's chats whose name as shown here has a word starting with each word typed, newest first,
 * a page at a time; a dialog's name is the other person's, an inbox thread's its writer's or the school's).
 */
import { api } from '@/api/client'
import { callPage } from '@/api/page'
import type { CursorPage } from '@/ui/pager'

import { CHAT_PAGE, type ChatItem } from './store'

/** the longest filter the API takes (CHAT_FILTER_MAX_CHARS) */
export const FILTER_MAX_CHARS = 100

/** The words of a text as the API reads them: letters and digits, case and ё folded. */
export function filterWords(text: string): string[] {
  return text.toLocaleLowerCase('ru').replaceAll('ё', 'е').match(/[\p{L}\p{N}]+/gu) ?? []
}

/** A page of one's chats named by `q` (no words: nothing, without asking). */
export function filterChats(q: string, cursor: string | null, signal: AbortSignal): Promise<CursorPage<ChatItem>> {
  if (!filterWords(q).length) return Promise.resolve({ items: [], next_cursor: null })
  return callPage(() => api.GET('/api/v1/chats', {
    params: { query: { q: q.slice(0, FILTER_MAX_CHARS), limit: CHAT_PAGE, ...(cursor ? { cursor } : {}) } },
    signal,
  }))
}
