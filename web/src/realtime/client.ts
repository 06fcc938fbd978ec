/**
 * The realtime connection: one WebSocket to the gateway (`/api/v1/realtime?access_token=`),
 * framework-free. It reconnects with a growing back-off (with jitter) whenever the socket
 * closes, pings to notice a dead connection, connects with a fresh access token each time (the
 * gateway closes a socket when its token expires), and after every reconnect catches up each
 * chat it follows: `GET /chats/{id}/messages?after=<last seq>` page by page, handing the
 * messages on as if they had been pushed. Pushed and fetched messages pass one filter by seq,
 * so nothing is doubled and a gap (a seq skipped) is fetched too.
 */

export type Status = 'connecting' | 'online' | 'offline' | 'stopped'

export interface RealtimeEvent {
  type: string
  data: Record<string, unknown>
}

/** Just what this client uses of a WebSocket (the browser's, or a fake in tests). */
export interface SocketLike {
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code?: number; reason?: string }) => void) | null
  onerror: ((event: unknown) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

export interface CatchUpPage {
  items: { seq: number }[]
  last_seq: number
}

export interface RealtimeOptions {
  /** The socket's URL for an access token. */
  url: (token: string) => string
  /** A valid access token (refreshed when needed), or null when signed out. */
  token: () => Promise<string | null>
  /** Messages of a chat after a seq, oldest first (the API's `after=` page). */
  fetchAfter: (chatId: string, after: number) => Promise<CatchUpPage>
  socket?: (url: string) => SocketLike
  /** Back-off: first wait, ceiling (ms); the wait doubles each failed attempt. */
  backoff?: { base: number; max: number }
  /** Ping period and how long to wait for the pong (ms). */
  heartbeat?: { every: number; timeout: number }
  random?: () => number
}

type Handler = (event: RealtimeEvent) => void
const SEQ_EVENTS = new Set(['MessagePosted'])
/** Refusals after which reconnecting with the same session cannot help. */
const FINAL = new Set(['auth.session_ended', 'auth.session_revoked'])

export class RealtimeClient {
  status: Status = 'stopped'
  /** Connections opened so far (the first is 1): a reconnect is any later one. */
  connections = 0
  private socket: SocketLike | null = null
  private readonly handlers = new Set<Handler>()
  private readonly statusHandlers = new Set<(status: Status) => void>()
  /** chat id -> the last seq shown of it (the catch-up cursor). */
  private readonly followed = new Map<string, number>()
  private readonly catching = new Map<string, Promise<void>>()
  private readonly again = new Set<string>()
  private attempts = 0
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private pingTimer: ReturnType<typeof setInterval> | null = null
  private pongTimer: ReturnType<typeof setTimeout> | null = null
  private readonly options: Required<Omit<RealtimeOptions, 'socket'>> & Pick<RealtimeOptions, 'socket'>

  constructor(options: RealtimeOptions) {
    this.options = {
      backoff: { base: 500, max: 15_000 },
      heartbeat: { every: 25_000, timeout: 10_000 },
      random: Math.random,
      ...options,
    }
  }

  /** Every event pushed or caught up: `{type: 'MessagePosted', data}`; `{type: 'reconnected'}` after a reconnect. */
  on(handler: Handler): () => void {
    this.handlers.add(handler)
    return () => this.handlers.delete(handler)
  }

  onStatus(handler: (status: Status) => void): () => void {
    this.statusHandlers.add(handler)
    return () => this.statusHandlers.delete(handler)
  }

  /** Follow a chat from a seq (the last one shown): its messages are caught up after reconnects. */
  follow(chatId: string, lastSeq: number): void {
    const known = this.followed.get(chatId)
    if (known === undefined || lastSeq > known) this.followed.set(chatId, lastSeq)
  }

  unfollow(chatId: string): void {
    this.followed.delete(chatId)
  }

  lastSeq(chatId: string): number | undefined {
    return this.followed.get(chatId)
  }

  start(): void {
    if (this.status !== 'stopped') return
    this.setStatus('connecting')
    void this.connect()
  }

  stop(): void {
    this.setStatus('stopped')
    this.clearTimers()
    const socket = this.socket
    this.socket = null
    if (socket) {
      socket.onclose = null
      socket.close(1000, 'bye')
    }
  }

  /** Try now instead of waiting for the back-off (the browser says it is online again). */
  retryNow(): void {
    if (this.status !== 'offline') return
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    this.attempts = 0
    void this.connect()
  }

  private setStatus(status: Status): void {
    if (this.status === status) return
    this.status = status
    for (const handler of this.statusHandlers) handler(status)
  }

  private emit(event: RealtimeEvent): void {
    for (const handler of this.handlers) handler(event)
  }

  private async connect(): Promise<void> {
    if (this.status === 'stopped') return
    let token: string | null = null
    try {
      token = await this.options.token()
    } catch {
      token = null
    }
    if ((this.status as Status) === 'stopped') return // stopped while the token came
    if (!token) {
      this.scheduleRetry()
      return
    }
    const make = this.options.socket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike)
    let socket: SocketLike
    try {
      socket = make(this.options.url(token))
    } catch {
      this.scheduleRetry()
      return
    }
    this.socket = socket
    let final = false
    socket.onmessage = (event) => {
      if (event.data === 'pong') {
        if (this.pongTimer) clearTimeout(this.pongTimer)
        this.pongTimer = null
        return
      }
      let message: { type?: string; data?: Record<string, unknown>; error?: { code?: string } }
      try {
        message = JSON.parse(String(event.data))
      } catch {
        return
      }
      if (message.type === 'ready') {
        this.opened()
      } else if (message.type === 'error') {
        final = FINAL.has(message.error?.code ?? '')
      } else if (message.type) {
        this.received({ type: message.type, data: message.data ?? {} })
      }
    }
    socket.onclose = () => {
      if (this.socket !== socket) return
      this.socket = null
      this.clearTimers()
      if (this.status === 'stopped') return
      if (final) {
        this.setStatus('stopped')
        return
      }
      this.scheduleRetry()
    }
    socket.onerror = () => {
      /* onclose follows */
    }
  }

  private opened(): void {
    this.attempts = 0
    this.connections += 1
    this.setStatus('online')
    const { every, timeout } = this.options.heartbeat
    this.pingTimer = setInterval(() => {
      if (!this.socket) return
      this.socket.send('ping')
      if (!this.pongTimer) {
        this.pongTimer = setTimeout(() => {
          this.pongTimer = null
          this.socket?.close(4000, 'no pong') // a dead connection: onclose reconnects
          const socket = this.socket
          if (socket?.onclose) socket.onclose({ code: 4000 })
        }, timeout)
      }
    }, every)
    if (this.connections > 1) {
      this.emit({ type: 'reconnected', data: {} })
      for (const chatId of this.followed.keys()) void this.catchUp(chatId)
    }
  }

  private scheduleRetry(): void {
    this.setStatus('offline')
    const { base, max } = this.options.backoff
    const wait = Math.min(max, base * 2 ** this.attempts) * (0.5 + this.options.random() / 2)
    this.attempts += 1
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      void this.connect()
    }, wait)
  }

  private clearTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer)
    if (this.pongTimer) clearTimeout(this.pongTimer)
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.pingTimer = this.pongTimer = this.retryTimer = null
  }

  /** A pushed event: a followed chat's message is passed on once, in order; a gap is fetched first. */
  private received(event: RealtimeEvent): void {
    const chatId = String(event.data.chat_id ?? '')
    const seq = Number(event.data.seq)
    const last = this.followed.get(chatId)
    if (!SEQ_EVENTS.has(event.type) || last === undefined || !Number.isInteger(seq)) {
      this.emit(event)
      return
    }
    if (seq <= last) return // already shown (caught up before it was pushed)
    if (seq === last + 1 && !this.catching.has(chatId)) {
      this.followed.set(chatId, seq)
      this.emit(event)
      return
    }
    void this.catchUp(chatId) // a gap, or a catch-up under way: the history has it, in order
  }

  /** Fetch what came after the last seq shown of a chat, page by page, and pass it on. */
  catchUp(chatId: string): Promise<void> {
    const running = this.catching.get(chatId)
    if (running) {
      this.again.add(chatId) // something newer arrived meanwhile: once more when this one ends
      return running
    }
    const task = (async () => {
      do {
        this.again.delete(chatId)
        for (let pages = 0; pages < 50; pages++) {
          const after = this.followed.get(chatId)
          if (after === undefined) return
          const page = await this.options.fetchAfter(chatId, after)
          let next = after
          for (const message of page.items) {
            if (message.seq <= next) continue
            next = message.seq
            this.followed.set(chatId, next)
            this.emit({ type: 'MessagePosted', data: { ...message, chat_id: chatId, caughtUp: true } })
          }
          if (next >= page.last_seq || next === after) break
        }
      } while (this.again.has(chatId))
    })()
    const done = task.catch(() => undefined).finally(() => {
      this.catching.delete(chatId)
      this.again.delete(chatId)
    })
    this.catching.set(chatId, done)
    return done
  }
}
