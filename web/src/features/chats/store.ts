/**
 * Chats: the list, the messages of the chats opened, people's names, and the realtime
 * connection (src/realtime) that keeps them current. Messages typed go through the outbox
 * (shown at once, sent when the API can take them, kept while offline).
 */
import { defineStore } from 'pinia'
import { computed, reactive, ref } from 'vue'

import { api, call, refreshSession, type Schemas } from '@/api/client'
import { callPage } from '@/api/page'
import { ApiError, NETWORK_FAILED } from '@/api/errors'
import { getTokens, needsRefresh } from '@/api/session'
import { useSession } from '@/features/auth/store'
import { fullName } from '@/features/people/profile'
import { RealtimeClient, type RealtimeEvent, type Status } from '@/realtime/client'
import { Outbox, type Pending } from '@/realtime/outbox'

export type Message = Schemas['MessageView']
export type Chat = Schemas['ChatView']
export type Poll = Schemas['PollView']
export interface ChatItem {
  chat: Chat
  last_seq: number
  unread: number
  last?: Message | null
  /** when a chat without messages came into the list live (it sorts as if its first message came then) */
  since?: number
}

export const PAGE = 30
/** chats a page of the list asks (issue #17), and the most one page may be (the API's limit) */
export const CHAT_PAGE = 50
const CHAT_PAGE_MAX = 200

function realtimeUrl(token: string): string {
  const { protocol, host } = globalThis.location
  return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}/api/v1/realtime?access_token=${encodeURIComponent(token)}`
}

async function freshToken(): Promise<string | null> {
  const tokens = getTokens()
  if (!tokens) return null
  if (needsRefresh(tokens)) await refreshSession()
  return getTokens()?.access ?? null
}

export const useChats = defineStore('chats', () => {
  const session = useSession()
  const items = ref<ChatItem[]>([])
  const loaded = ref(false)
  const messages = reactive<Record<string, Message[]>>({})
  const older = reactive<Record<string, boolean>>({})
  /** chat id -> user id -> read until (MessagesRead seen live) */
  const readBy = reactive<Record<string, Record<string, number>>>({})
  const names = reactive<Record<string, string>>({})
  const organizations = ref<Schemas['MyOrganization'][]>([])
  const status = ref<Status>('stopped')
  const pending = ref<Pending[]>([])
  /** the chat on screen (its messages are read as they come) */
  const openChat = ref<string | null>(null)
  let realtime: RealtimeClient | null = null
  let outbox: Outbox<Message> | null = null
  let userId: string | null = null

  const me = computed(() => session.tokens?.userId ?? null)

  function item(chatId: string): ChatItem | undefined {
    return items.value.find((i) => i.chat.chat_id === chatId)
  }

  function sortItems(): void {
    const when = (i: ChatItem) => (i.last ? Date.parse(i.last.posted_at) : i.since ?? 0)
    items.value.sort((a, b) => when(b) - when(a) || b.last_seq - a.last_seq)
  }

  async function name(userIdToName: string | null | undefined): Promise<void> {
    if (!userIdToName || names[userIdToName] !== undefined) return
    names[userIdToName] = ''
    try {
      const person = await call(() => api.GET('/api/v1/people/{user_id}', { params: { path: { user_id: userIdToName } } }))
      names[userIdToName] = fullName(person)
    } catch {
      delete names[userIdToName]
    }
  }

  function adminOf(organizationId: string | null | undefined): boolean {
    return organizations.value.some((o) => o.organization.organization_id === organizationId
      && o.membership.roles.includes('admin'))
  }

  /** Schools by their public details (GET /organizations/{id}): a chat can outlive one's membership of its school
   *  (one's own inbox thread stays one's after leaving, CH-5), and is still named by the school. */
  const schoolNames = reactive<Record<string, string>>({})

  function organizationName(organizationId: string | null | undefined): string {
    const mine = organizations.value.find((o) => o.organization.organization_id === organizationId)
    return mine?.organization.name ?? (organizationId ? schoolNames[organizationId] ?? '' : '')
  }

  async function nameSchool(organizationId: string | null | undefined): Promise<void> {
    if (!organizationId || schoolNames[organizationId] !== undefined
      || organizations.value.some((o) => o.organization.organization_id === organizationId)) return
    schoolNames[organizationId] = ''
    try {
      const school = await call(() => api.GET('/api/v1/organizations/{organization_id}', {
        params: { path: { organization_id: organizationId } } }))
      schoolNames[organizationId] = school.name
    } catch {
      delete schoolNames[organizationId]
    }
  }

  /** Learn the name a chat is shown by when it is not its own: a person's, or a school's one is no longer in. */
  function nameChat(chat: Chat): void {
    const other = counterpart(chat)
    if (other) void name(other)
    else if (chat.kind === 'inbox') void nameSchool(chat.organization_id)
  }

  /** The people a chat is named after (a dialog's other person, an inbox thread's writer for its admins). */
  function counterpart(chat: Chat): string | null {
    if (chat.kind === 'direct') return chat.member_ids.find((m) => m !== me.value) ?? null
    if (chat.kind === 'inbox' && chat.member_ids.length > 1 && chat.member_ids[0] !== me.value) return chat.member_ids[0] ?? null
    return null
  }

  const readUpTo = new Map<string, number>() // chat id -> the last seq this client marked read

  /** The chat list a page at a time (issue #17): the next page's cursor (null: no more), the page being asked. */
  const nextChats = ref<string | null>(null)
  const loadingMore = ref(false)
  const moreError = ref<unknown>(null)
  let listGeneration = 0

  /** A chat as listed, with what this client knows newer than the list (an event, a read mark on its way). */
  function merged(listed: ChatItem, known: ChatItem | undefined): ChatItem {
    // A read mark this client set may still be on its way (or was sent after the list was read): what it
    // covers is read, whatever the list counted.
    const read = (readUpTo.get(listed.chat.chat_id) ?? -1) >= listed.last_seq ? { ...listed, unread: 0 } : listed
    // What only a chat read alone says (a dialog's read_only_reason, CH-1) stays until it is read alone again.
    const alone = known?.chat.read_only_reason !== undefined && listed.chat.read_only_reason === undefined
    const i = alone ? { ...read, chat: { ...read.chat, read_only_reason: known!.chat.read_only_reason } } : read
    return known && known.last_seq > i.last_seq
      ? { ...i, last_seq: known.last_seq, unread: known.unread, last: known.last }
      : { ...i, last: known?.last ?? null }
  }

  /** Names and the last message of each chat listed (the list's preview), a few at a time. */
  async function previews(listed: ChatItem[]): Promise<void> {
    for (const i of listed) nameChat(i.chat)
    sortItems()
    await Promise.all(listed.filter((i) => i.last_seq >= 0 && (!i.last || i.last.seq !== i.last_seq)).map(async (i) => {
      const page = await call(() => api.GET('/api/v1/chats/{chat_id}/messages', {
        params: { path: { chat_id: i.chat.chat_id }, query: { limit: 1 } } })).catch(() => null)
      const last = page?.items[0]
      if (last) {
        i.last = last
        void name(last.author_id)
      }
    }))
    sortItems()
  }

  /** The list's first page again, as long as what was shown (up to the largest page): newest first. */
  async function loadList(): Promise<void> {
    const generation = ++listGeneration
    const limit = Math.min(CHAT_PAGE_MAX, Math.max(CHAT_PAGE, items.value.length))
    const [page, orgs] = await Promise.all([
      callPage(() => api.GET('/api/v1/chats', { params: { query: { limit } } })),
      organizations.value.length ? Promise.resolve(organizations.value) : call(() => api.GET('/api/v1/me/organizations')),
    ])
    organizations.value = orgs
    if (generation !== listGeneration) return // a newer ask of the list answers
    // An event that arrived while the list was on its way is newer than the list: it stays.
    const previous = new Map(items.value.map((i) => [i.chat.chat_id, i]))
    items.value = page.items.map((listed) => merged(listed, previous.get(listed.chat.chat_id)))
    nextChats.value = page.next_cursor ?? null
    moreError.value = null
    loaded.value = true
    await previews(items.value)
  }

  const arriving = new Map<string, Promise<void>>()
  /**
   * A chat not in the pages shown (created, joined, or further down the list) is asked alone and put on top;
   * ``again``: one shown is asked again (renamed, members changed). A chat one may no longer see leaves the list.
   * Not the whole list again: a person of hundreds of chats gets one small answer per change.
   */
  function arrive(chatId: string, again = false, live = true): Promise<void> {
    const running = arriving.get(chatId)
    if (running) return running
    if (item(chatId) && !again) return Promise.resolve()
    const task = (async () => {
      try {
        const chat = await call(() => api.GET('/api/v1/chats/{chat_id}', { params: { path: { chat_id: chatId } } }))
        const known = item(chatId)
        if (known) known.chat = chat
        else items.value = [{ chat, last_seq: -1, unread: 0, last: null, since: live ? Date.now() : 0 }, ...items.value]
        nameChat(chat)
        sortItems()
      } catch (e) {
        if (e instanceof ApiError && (e.status === 403 || e.status === 404)) {
          items.value = items.value.filter((i) => i.chat.chat_id !== chatId)
        }
      }
    })().finally(() => arriving.delete(chatId))
    arriving.set(chatId, task)
    return task
  }

  /** The next page of the list, after what is shown (a chat already shown is not shown twice). */
  async function loadMore(): Promise<void> {
    const cursor = nextChats.value
    if (loadingMore.value || cursor === null) return
    const generation = listGeneration
    loadingMore.value = true
    moreError.value = null
    try {
      const page = await callPage(() => api.GET('/api/v1/chats', { params: { query: { limit: CHAT_PAGE, cursor } } }))
      if (generation !== listGeneration) return // the list was asked again meanwhile: its own cursor goes on
      const shown = new Set(items.value.map((i) => i.chat.chat_id))
      const added = page.items.filter((listed) => !shown.has(listed.chat.chat_id)).map((listed) => merged(listed, undefined))
      items.value = [...items.value, ...added]
      nextChats.value = page.next_cursor ?? null
      await previews(items.value.slice(items.value.length - added.length))
    } catch (e) {
      moreError.value = e
    } finally {
      loadingMore.value = false
    }
  }

  function upsert(chatId: string, message: Message): void {
    const list = messages[chatId]
    if (list) {
      const at = list.findIndex((m) => m.seq === message.seq)
      if (at >= 0) list[at] = { ...list[at], ...message }
      else {
        list.push(message)
        list.sort((a, b) => a.seq - b.seq)
      }
    }
    const i = item(chatId)
    if (i && (!i.last || message.seq >= i.last.seq)) {
      i.last = message
      i.last_seq = Math.max(i.last_seq, message.seq)
    }
    void name(message.author_id)
  }

  function patch(chatId: string, seq: number, change: Partial<Message>): void {
    const m = messages[chatId]?.find((x) => x.seq === seq)
    if (m) Object.assign(m, change)
    const i = item(chatId)
    if (i?.last?.seq === seq) i.last = { ...i.last, ...change }
  }

  /** Who has read one's own messages (CH-4, the API's answer): chat id -> seq -> how many, and who once asked. */
  const readers = reactive<Record<string, Record<number, { count: number; ids: (string | null)[] | null }>>>({})
  // Asks under way: `${chat}:${seq}:${all}` -> the ask (shared by those who ask the same while it runs).
  const readersAsked = new Map<string, { chatId: string; seq: number; all: boolean; task: Promise<void> }>()
  // A chat's asks again, due together (150 ms after the last read mark), for the seqs read in (from, until].
  const readersDue = new Map<string, { from: number; until: number; timer: ReturnType<typeof setTimeout> }>()
  // Asks of one message's readers are numbered as they are sent; an answer's count is shown unless a later-sent
  // answer's count has been already (a count asked before a read mark, answered after the count asked since: CI
  // showed "read" and no count), and its list (a whole-list ask) unless a later-sent list has been: each kind in its
  // own order, so that a list answered after a later count still shows its names.
  let readersSent = 0
  const readersShown = new Map<string, { count: number; list: number }>()

  /** Ask who has read a message (``all``: every page of the list, else the count). The same ask under way is
   *  shared, unless ``again``: a read mark has come since it was sent, so its answer may not count it. */
  function loadReaders(chatId: string, seq: number, all = false, again = false): Promise<void> {
    const key = `${chatId}:${seq}:${all}`
    const running = readersAsked.get(key)
    if (running && !again) return running.task
    const sent = ++readersSent
    const task: Promise<void> = (async () => {
      let cursor: string | undefined
      const ids: (string | null)[] = []
      let count = 0
      for (let pages = 0; pages < 20; pages++) {
        const page = await call(() => api.GET('/api/v1/chats/{chat_id}/messages/{seq}/readers', {
          params: { path: { chat_id: chatId, seq }, query: { limit: all ? 200 : 1, cursor } } }))
        count = page.count
        ids.push(...page.items.map((r) => r.user_id ?? null))
        if (!all || !page.next_cursor) break
        cursor = page.next_cursor
      }
      const message = `${chatId}:${seq}`
      const shown = readersShown.get(message) ?? { count: 0, list: 0 }
      const newerCount = sent > shown.count
      const newerList = all && sent > shown.list
      if (!newerCount && !newerList) return  // later asks' answers are shown already
      readersShown.set(message, { count: newerCount ? sent : shown.count, list: newerList ? sent : shown.list })
      const known = readers[chatId]?.[seq]
      readers[chatId] = { ...(readers[chatId] ?? {}), [seq]: {
        count: newerCount || !known ? count : known.count,
        ids: newerList ? ids : known?.ids ?? null } }
      if (newerList) for (const id of ids) void name(id)
    })().finally(() => {
      if (readersAsked.get(key)?.task === task) readersAsked.delete(key)
    })
    readersAsked.set(key, { chatId, seq, all, task })
    return task
  }

  /** Someone read a chat from after ``readFrom`` up to ``readUntil``: the counts (and lists) of one's messages in
   *  that range, known or still being asked, are asked again, once. Those up to ``readFrom`` counted that reader
   *  already: asking them again on every mark made a chat of N own messages ask N times a mark (bench.web: a reader
   *  marking each message as it came made the writer's posts wait behind hundreds of asks a second). */
  function refreshReaders(chatId: string, readFrom: number, readUntil: number): void {
    const due = readersDue.get(chatId)
    const range = due ? { from: Math.min(due.from, readFrom), until: Math.max(due.until, readUntil) }
      : { from: readFrom, until: readUntil }
    const within = (seq: number) => seq > range.from && seq <= range.until
    const asked = new Map<number, boolean>()  // seq -> the whole list (else the count)
    for (const [seq, shown] of Object.entries(readers[chatId] ?? {})) {
      if (within(Number(seq))) asked.set(Number(seq), shown.ids !== null)
    }
    for (const ask of readersAsked.values()) {
      if (ask.chatId === chatId && within(ask.seq)) asked.set(ask.seq, asked.get(ask.seq) || ask.all)
    }
    if (!asked.size) return
    if (due) clearTimeout(due.timer)
    readersDue.set(chatId, { ...range, timer: setTimeout(() => {
      readersDue.delete(chatId)
      for (const [seq, all] of asked) void loadReaders(chatId, seq, all, true).catch(() => undefined)
    }, 150) })
  }

  /** Someone read a chat up to a seq (a MessagesRead, or a post's own mark): one's own unread count stops there;
   *  another's (``null``: the organization, CH-5) marks one's messages up to it read. ``readFrom``: where the event
   *  says that reader's mark was before (its ``read_from``, a post's ``author_read_from``; null: it does not say):
   *  only the messages after it were newly read, even by a mark the first this page sees of that reader (without
   *  it, all up to ``seq`` are asked again). */
  function readUntil(chatId: string, reader: string | null, seq: number, readFrom?: number | null): void {
    if (reader === me.value) {
      const i = item(chatId)
      if (i) i.unread = Math.max(0, i.last_seq - seq)
      return
    }
    const key = reader ?? 'organization'
    const seen = readBy[chatId]?.[key]
    const before = seen ?? -1
    if (seq <= before) return  // read that far already: counted
    readBy[chatId] = { ...(readBy[chatId] ?? {}), [key]: seq }
    const from = typeof readFrom === 'number' ? Math.min(readFrom, seen ?? readFrom) : before
    refreshReaders(chatId, from, seq)
  }

  /** One's own post as the API answered it (it names one even on behalf of the school, whose live event does
   *  not): posting read the chat up to it. */
  function sentOwn(chatId: string, message: Message): void {
    upsert(chatId, message)
    readUntil(chatId, me.value, message.seq)
  }

  /** Other features' share of the one realtime connection (a call's whiteboard): every event, as it comes. */
  const listeners = new Set<(event: RealtimeEvent) => void>()
  function listen(handler: (event: RealtimeEvent) => void): () => void {
    listeners.add(handler)
    return () => listeners.delete(handler)
  }

  function onEvent(event: RealtimeEvent): void {
    for (const handler of listeners) handler(event)
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const d = event.data as Record<string, any>
    const chatId = String(d.chat_id ?? '')
    switch (event.type) {
      case 'MessagePosted': {
        const { caughtUp: _caughtUp, chat_id: _chat, ...rest } = d as Record<string, unknown>
        const message = { deleted: false, attachments: [], ...rest } as unknown as Message
        if (message.poll && !('my_choice' in message.poll)) (message.poll as unknown as Poll).my_choice = [] // events carry no one's choice
        const known = item(chatId)
        if (!known) {
          // A chat further down than the pages shown, or new: it comes alone, then this message moves it up.
          void arrive(chatId).then(() => {
            if (item(chatId)) onEvent(event)
          })
          return
        }
        const fresh = !known.last || message.seq > known.last.seq
        // A list read after the message was saved counted it already (its last_seq covers it) while its preview
        // is still the one before: unread once, not twice (CI's chat list showed 2 for one new message).
        const uncounted = message.seq > known.last_seq
        upsert(chatId, message)
        if (fresh && message.author_id !== me.value) {
          if (uncounted) known.unread += 1
          if (openChat.value === chatId && globalThis.document?.visibilityState !== 'hidden') void markRead(chatId)
          notify(known, message)
        }
        // The post read the chat up to it for its author (no MessagesRead comes for it, issue #17): the author's
        // (the organization's when it names no one, CH-5) read mark up to its seq.
        // A post on behalf of the organization names no admin, nor where that admin's own mark was: the messages
        // up to it may each have a reader more (an admin counts as themself outside an inbox thread, CH-5), so
        // all of them are asked again.
        if (d.read_by_author) {
          readUntil(chatId, message.author_id ?? null, message.seq, message.author_id ? d.author_read_from : -1)
        }
        sortItems()
        break
      }
      case 'MessageEdited':
        patch(chatId, d.seq, { text: d.text, edited_at: d.edited_at })
        break
      case 'MessageDeleted':
        patch(chatId, d.seq, { deleted: true, text: '', attachments: [], deleted_at: d.deleted_at })
        break
      case 'PollVoted':
      case 'PollClosed': {
        const m = messages[chatId]?.find((x) => x.seq === d.seq)
        const poll = m?.poll as Poll | undefined
        if (poll) {
          if (event.type === 'PollClosed') poll.closed = true
          else Object.assign(poll, { counts: d.counts, voters: d.voters })
        }
        break
      }
      case 'MessagesRead':
        readUntil(chatId, d.user_id as string | null, d.read_until as number, d.read_from)
        break
      case 'reconnected':
        // after= brings the new messages; edits, deletions and votes made meanwhile are in the pages shown.
        for (const shown of Object.keys(messages)) void refreshShown(shown)
        for (const shown of Object.keys(readers)) refreshReaders(shown, -Infinity, Infinity)  // marks missed meanwhile
        void loadList().catch(() => undefined)
        break
      case 'ChatMembersChanged':
        if ((d.removed as string[] | undefined)?.includes(me.value ?? '')) {
          items.value = items.value.filter((i) => i.chat.chat_id !== chatId)
          break
        }
        void arrive(chatId, true)
        break
      case 'ChatCreated':
      case 'ChatUpdated':
        void arrive(chatId, true)
        break
    }
  }

  // Background tabs: a notification and a count in the title (CH-4).
  let hiddenUnread = 0
  function notify(chat: ChatItem, message: Message): void {
    const doc = globalThis.document
    if (!doc || doc.visibilityState !== 'hidden') return
    hiddenUnread += 1
    doc.title = `(${hiddenUnread}) ${doc.title.replace(/^\(\d+\) /, '')}`
    if (typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      new Notification(title(chat.chat), { body: message.text || '📎', tag: chat.chat.chat_id })
    }
  }
  globalThis.document?.addEventListener('visibilitychange', () => {
    if (globalThis.document.visibilityState === 'visible' && hiddenUnread) {
      hiddenUnread = 0
      globalThis.document.title = globalThis.document.title.replace(/^\(\d+\) /, '')
      if (openChat.value) void markRead(openChat.value)
    }
  })

  function title(chat: Chat): string {
    const other = counterpart(chat)
    if (other) return names[other] || '…'
    if (chat.kind === 'inbox') return organizationName(chat.organization_id)
    return chat.name || chat.subject || ''
  }

  /** Start the connection and the outbox for the signed-in person (once). */
  function start(): void {
    const uid = me.value
    if (!uid || userId === uid) return
    stop()
    userId = uid
    outbox = new Outbox<Message>({
      key: `sfera.outbox.${uid}`,
      send: (p) => call(() => api.POST('/api/v1/chats/{chat_id}/messages', {
        params: { path: { chat_id: p.chatId } }, body: { text: p.text, reply_to: p.replyTo, client_message_id: p.clientMessageId } })),
      isNetworkError: (e) => e instanceof ApiError && (e.code === NETWORK_FAILED || e.status >= 500 || e.status === 429),
      errorCode: (e) => (e instanceof ApiError ? e.code : 'unknown'),
    })
    pending.value = outbox.list()
    outbox.onChange(() => {
      pending.value = outbox?.list() ?? []
    })
    outbox.onSent((p, message) => sentOwn(p.chatId, message))
    realtime = new RealtimeClient({
      url: realtimeUrl,
      token: freshToken,
      fetchAfter: (chatId, after) => call(() => api.GET('/api/v1/chats/{chat_id}/messages', {
        params: { path: { chat_id: chatId }, query: { after, limit: 100 } } })),
    })
    realtime.on(onEvent)
    realtime.onStatus((s) => {
      status.value = s
      if (s === 'online') void outbox?.flush()
    })
    realtime.start()
    globalThis.addEventListener?.('online', onlineAgain)
    void outbox.flush()
  }

  function onlineAgain(): void {
    realtime?.retryNow()
    void outbox?.flush()
  }

  function stop(): void {
    realtime?.stop()
    realtime = null
    outbox = null
    userId = null
    globalThis.removeEventListener?.('online', onlineAgain)
  }

  /** Load a chat's newest page and follow it; answers the first unread seq when opened (the divider's place). */
  async function open(chatId: string): Promise<number | null> {
    openChat.value = chatId
    let readAlone = false
    if (!item(chatId)) {
      if (!loaded.value) await loadList()
      readAlone = !item(chatId)
      await arrive(chatId, false, false) // a chat further down the list than its pages shown
    }
    if (!readAlone && item(chatId)?.chat.kind === 'direct') {
      // A dialog read alone says whether its two people may still talk (CH-1: read_only_reason); lists do not.
      void arrive(chatId, true, false)
    }
    const opened = item(chatId)
    const firstUnread = opened && opened.unread ? opened.last_seq - opened.unread + 1 : null
    const page = await call(() => api.GET('/api/v1/chats/{chat_id}/messages', {
      params: { path: { chat_id: chatId }, query: { limit: PAGE } } }))
    const list = [...page.items].reverse()
    messages[chatId] = list
    older[chatId] = list.length > 0 && list[0]!.seq > 0
    for (const m of list) void name(m.author_id)
    realtime?.follow(chatId, page.last_seq)
    // What came between the page and following it is caught up by the socket's filter.
    void realtime?.catchUp(chatId)
    return firstUnread
  }

  function close(chatId: string): void {
    if (openChat.value === chatId) openChat.value = null
    realtime?.unfollow(chatId)
  }

  /** Fetch again the messages of a chat already on screen (what changed while the socket was down). */
  async function refreshShown(chatId: string): Promise<void> {
    const list = messages[chatId]
    if (!list?.length) return
    const oldest = list[0]!.seq
    const newest = list.at(-1)!.seq
    let before = newest + 1
    while (before > oldest) {
      const page = await call(() => api.GET('/api/v1/chats/{chat_id}/messages', {
        params: { path: { chat_id: chatId }, query: { before, limit: 200 } } })).catch(() => null)
      if (!page?.items.length) return
      for (const m of page.items) if (m.seq >= oldest) patch(chatId, m.seq, m)
      before = page.items.at(-1)!.seq
    }
  }

  async function loadOlder(chatId: string, limit = PAGE): Promise<number> {
    const list = messages[chatId]
    if (!list?.length || !older[chatId]) return 0
    const page = await call(() => api.GET('/api/v1/chats/{chat_id}/messages', {
      params: { path: { chat_id: chatId }, query: { before: list[0]!.seq, limit } } }))
    const earlier = [...page.items].reverse().filter((m) => !list.some((x) => x.seq === m.seq))
    list.unshift(...earlier)
    older[chatId] = earlier.length > 0 && earlier[0]!.seq > 0
    for (const m of earlier) void name(m.author_id)
    return earlier.length
  }

  let readTimer: ReturnType<typeof setTimeout> | null = null
  async function markRead(chatId: string): Promise<void> {
    const i = item(chatId)
    const last = messages[chatId]?.at(-1)?.seq ?? i?.last_seq ?? -1
    if (last < 0 || (i && i.unread === 0)) return
    if (i) i.unread = 0
    readUpTo.set(chatId, Math.max(last, readUpTo.get(chatId) ?? -1))
    if (readTimer) clearTimeout(readTimer)
    readTimer = setTimeout(() => {
      void call(() => api.PUT('/api/v1/chats/{chat_id}/read', { params: { path: { chat_id: chatId } },
                                                               body: { seq: last } })).catch(() => undefined)
    }, 150)
  }

  function send(chatId: string, text: string, replyTo: number | null): void {
    outbox?.add(chatId, text, replyTo)
  }

  function dropPending(id: string): void {
    outbox?.remove(id)
  }

  function retryPending(id: string): void {
    outbox?.retry(id)
  }

  async function post(chatId: string, body: Schemas['MessageInput']): Promise<Message> {
    const message = await call(() => api.POST('/api/v1/chats/{chat_id}/messages', {
      params: { path: { chat_id: chatId } }, body }))
    sentOwn(chatId, message)
    return message
  }

  async function edit(chatId: string, seq: number, text: string): Promise<void> {
    await call(() => api.PUT('/api/v1/chats/{chat_id}/messages/{seq}', { params: { path: { chat_id: chatId, seq } },
                                                                        body: { text } }))
    patch(chatId, seq, { text, edited_at: new Date().toISOString() })
  }

  async function remove(chatId: string, seq: number): Promise<void> {
    const shown = await call(() => api.DELETE('/api/v1/chats/{chat_id}/messages/{seq}', {
      params: { path: { chat_id: chatId, seq } } }))
    patch(chatId, seq, { ...shown, deleted: true })
  }

  async function vote(chatId: string, seq: number, options: number[]): Promise<void> {
    const shown = await call(() => api.PUT('/api/v1/chats/{chat_id}/messages/{seq}/vote', {
      params: { path: { chat_id: chatId, seq } }, body: { options } }))
    upsert(chatId, shown)
  }

  async function closePoll(chatId: string, seq: number): Promise<void> {
    const shown = await call(() => api.POST('/api/v1/chats/{chat_id}/messages/{seq}/poll-closure', {
      params: { path: { chat_id: chatId, seq } } }))
    upsert(chatId, shown)
  }

  async function report(chatId: string, seq: number, reason: string): Promise<void> {
    await call(() => api.POST('/api/v1/chats/{chat_id}/messages/{seq}/reports', {
      params: { path: { chat_id: chatId, seq } }, body: { reason } }))
  }

  const hasMoreChats = computed(() => nextChats.value !== null)

  return { items, loaded, hasMoreChats, loadingMore, moreError, loadMore, messages, older, readBy, readers, loadReaders, names, organizations, status, pending, openChat, me,
           item, title, counterpart, adminOf, organizationName, name, loadList, start, stop, listen, open, close, loadOlder,
           markRead, send, dropPending, retryPending, post, edit, remove, vote, closePoll, report }
})
