/**
 * The chat list's name filter (issue #17): the list pages, so the box above it asks the server
 * (`GET /chats?q=`: one's chats whose name has a word starting with each word typed, newest first, a page at a
 * time). Messaging holds chats' names, not people's: a dialog (named by the other person) or an inbox thread
 * (by a person or the school) is matched here, among the chats loaded, by the same rule.
 */
import { api, type Schemas } from '@/api/client'
import { callPage } from '@/api/page'
import type { CursorPage } from '@/ui/pager'

import { CHAT_PAGE, type ChatItem } from './store'

/** the longest filter the API takes (CHAT_FILTER_MAX_CHARS) */
export const FILTER_MAX_CHARS = 100

/** The words of a text as the API reads them: letters and digits, case and ё folded. */
export function filterWords(text: string): string[] {
  return text.toLocaleLowerCase('ru').replaceAll('ё', 'е').match(/[\p{L}\p{N}]+/gu) ?? []
}

/** Every word of `q` starts a word of `name` (the server's rule). */
export function nameMatches(name: string, q: string): boolean {
  const words = filterWords(name)
  return filterWords(q).every((w) => words.some((n) => n.startsWith(w)))
}

/** The chats a person's name or the school's names: the server cannot match them by name. */
export function namedByPeople(chat: Schemas['ChatView']): boolean {
  return chat.kind === 'direct' || chat.kind === 'inbox'
}

/** A page of one's chats named by `q` (no words: nothing, without asking). */
export function filterChats(q: string, cursor: string | null, signal: AbortSignal): Promise<CursorPage<ChatItem>> {
  if (!filterWords(q).length) return Promise.resolve({ items: [], next_cursor: null })
  return callPage(() => api.GET('/api/v1/chats', {
    params: { query: { q: q.slice(0, FILTER_MAX_CHARS), limit: CHAT_PAGE, ...(cursor ? { cursor } : {}) } },
    signal,
  }))
}
