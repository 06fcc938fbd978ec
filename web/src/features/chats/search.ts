/**
 * Message search (issue #17): `GET /api/v1/messages/search?q=&chat_id=&cursor=&limit=`, newest first, a page at a
 * time, across one's chats or in one chat; and opening a result: the chat's history loaded back to the message.
 */
import { api, call, type Schemas } from '@/api/client'
import type { CursorPage } from '@/ui/pager'

/** One message found (field names as in a chat's history; chat_name is none for a dialog). */
export type MessageHit = Schemas['MessageHit']

export const SEARCH_PAGE = 20

/** A page of the messages with the words `q` (in the chat `chatId` only, when given). */
export function searchMessages(q: string, chatId: string | null, cursor: string | null,
                               signal: AbortSignal): Promise<CursorPage<MessageHit>> {
  return call(() => api.GET('/api/v1/messages/search', {
    params: { query: { q, limit: SEARCH_PAGE, ...(chatId ? { chat_id: chatId } : {}), ...(cursor ? { cursor } : {}) } },
    signal,
  }))
}

/** What of the chats' store opening a found message needs. */
export interface History {
  messages: Record<string, { seq: number }[]>
  older: Record<string, boolean>
  loadOlder: (chatId: string, limit?: number) => Promise<number>
}

/**
 * The chat's history (newest page already loaded) extended back to the message `seq` and a few before it, in
 * pages of at most 200; true when the message is there to be shown (a deleted one is not).
 */
export async function reveal(chats: History, chatId: string, seq: number, context = 5): Promise<boolean> {
  for (;;) {
    const first = chats.messages[chatId]?.[0]?.seq
    if (first === undefined || first <= seq - context || !chats.older[chatId]) break
    const got = await chats.loadOlder(chatId, Math.min(200, first - seq + context))
    if (!got) break
  }
  return chats.messages[chatId]?.some((m) => m.seq === seq) ?? false
}
