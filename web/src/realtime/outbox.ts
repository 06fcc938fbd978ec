/**
 * Messages typed but not yet accepted by the API, kept in localStorage (per person) until
 * they are: nothing typed is lost when the connection drops or the tab is closed. They go out
 * in the order typed; a network failure stops the queue (it is retried when the connection
 * returns), a refusal (4xx) keeps the message with its error for the person to see.
 */

export interface Pending {
  /** the client's own id of the message (shown until the API's seq replaces it) */
  id: string
  /** the message's idempotency key (a UUID), chosen when typed and sent on every attempt: a re-send whose
   * first answer was lost gets the first message back instead of posting it twice */
  clientMessageId: string
  chatId: string
  text: string
  replyTo: number | null
  createdAt: number
  /** an API error code when the API refused it */
  failed?: string
}

export interface OutboxOptions<T> {
  key: string
  send: (pending: Pending) => Promise<T>
  /** true when the failure is the network's (the message waits), false for a refusal */
  isNetworkError: (error: unknown) => boolean
  errorCode?: (error: unknown) => string
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>
}

/** A random UUID (v4); crypto.randomUUID exists only in secure contexts, getRandomValues everywhere. */
export function newUuid(): string {
  if (typeof globalThis.crypto?.randomUUID === 'function') return globalThis.crypto.randomUUID()
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6]! & 0x0f) | 0x40
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

export class Outbox<T = unknown> {
  private items: Pending[]
  private flushing: Promise<void> | null = null
  private readonly changeHandlers = new Set<() => void>()
  private readonly sentHandlers = new Set<(pending: Pending, result: T) => void>()
  private readonly options: OutboxOptions<T>

  constructor(options: OutboxOptions<T>) {
    this.options = options
    this.items = this.read()
    // A queue kept by an older client has no keys yet: each gets one now, kept from here on.
    if (this.items.some((p) => !p.clientMessageId)) {
      for (const p of this.items) p.clientMessageId ||= newUuid()
      this.save()
    }
  }

  private get storage(): OutboxOptions<T>['storage'] {
    return this.options.storage ?? globalThis.localStorage
  }

  private read(): Pending[] {
    try {
      const parsed = JSON.parse(this.storage?.getItem(this.options.key) ?? '[]')
      return Array.isArray(parsed) ? parsed.filter((p) => p && typeof p.id === 'string') : []
    } catch {
      return []
    }
  }

  private save(): void {
    if (this.items.length) this.storage?.setItem(this.options.key, JSON.stringify(this.items))
    else this.storage?.removeItem(this.options.key)
    for (const handler of this.changeHandlers) handler()
  }

  list(chatId?: string): Pending[] {
    return this.items.filter((p) => chatId === undefined || p.chatId === chatId)
  }

  onChange(handler: () => void): () => void {
    this.changeHandlers.add(handler)
    return () => this.changeHandlers.delete(handler)
  }

  onSent(handler: (pending: Pending, result: T) => void): () => void {
    this.sentHandlers.add(handler)
    return () => this.sentHandlers.delete(handler)
  }

  add(chatId: string, text: string, replyTo: number | null = null): Pending {
    const pending: Pending = { id: `local-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
                               clientMessageId: newUuid(), chatId, text, replyTo, createdAt: Date.now() }
    this.items.push(pending)
    this.save()
    void this.flush()
    return pending
  }

  remove(id: string): void {
    this.items = this.items.filter((p) => p.id !== id)
    this.save()
  }

  /** Send a refused message again (after the person changed nothing or the cause went away). */
  retry(id: string): void {
    const pending = this.items.find((p) => p.id === id)
    if (pending) delete pending.failed
    this.save()
    void this.flush()
  }

  /** Send what waits, in order, one at a time; resolves when the queue is empty or the network failed. */
  flush(): Promise<void> {
    if (!this.flushing) {
      this.flushing = this.run().finally(() => {
        this.flushing = null
      })
    }
    return this.flushing
  }

  private async run(): Promise<void> {
    for (;;) {
      const next = this.items.find((p) => !p.failed)
      if (!next) return
      let result: T
      try {
        result = await this.options.send(next)
      } catch (error) {
        if (this.options.isNetworkError(error)) return // waits for the connection
        next.failed = this.options.errorCode?.(error) ?? 'unknown'
        this.save()
        continue
      }
      for (const handler of this.sentHandlers) handler(next, result) // shown as sent before it leaves the queue
      this.items = this.items.filter((p) => p.id !== next.id)
      this.save()
    }
  }
}
