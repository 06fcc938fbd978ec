/**
 * The signed-in session's tokens, kept in localStorage and shared by the tabs of one browser.
 *
 * The refresh token rotates (POST /auth/refresh returns a new one and the old one ends the
 * session if used again), so two tabs must never refresh with the same token: a refresh runs
 * under a Web Lock across tabs, re-reads the stored tokens inside it and adopts them when
 * another tab has already refreshed. Framework-free: the pinia store mirrors it.
 */

export interface Tokens {
  access: string
  refresh: string
  sessionId: string
  userId: string
  /** epoch ms when the access token stops being accepted */
  expiresAt: number
}

const KEY = 'sfera.session'
/** Refresh this long before the access token expires. */
export const REFRESH_MARGIN_MS = 30_000

type Listener = (tokens: Tokens | null) => void
const listeners = new Set<Listener>()
let current: Tokens | null = read()

function read(): Tokens | null {
  try {
    const raw = globalThis.localStorage?.getItem(KEY)
    if (!raw) return null
    const t = JSON.parse(raw) as Partial<Tokens>
    return t.access && t.refresh && t.sessionId && t.userId && typeof t.expiresAt === 'number' ? (t as Tokens) : null
  } catch {
    return null
  }
}

export function getTokens(): Tokens | null {
  return current
}

export function setTokens(tokens: Tokens | null): void {
  current = tokens
  if (tokens) globalThis.localStorage?.setItem(KEY, JSON.stringify(tokens))
  else globalThis.localStorage?.removeItem(KEY)
  for (const listener of listeners) listener(tokens)
}

export function onTokens(listener: Listener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

// Another tab signed in, refreshed or signed out.
globalThis.addEventListener?.('storage', (event: StorageEvent) => {
  if (event.key !== KEY && event.key !== null) return
  current = read()
  for (const listener of listeners) listener(current)
})

export function needsRefresh(tokens: Tokens, now = Date.now()): boolean {
  return tokens.expiresAt - now < REFRESH_MARGIN_MS
}

export type RefreshCall = (refreshToken: string) => Promise<
  { ok: true; access: string; refresh: string; sessionId: string; expiresIn: number } | { ok: false; final: boolean }
>

let inFlight: Promise<boolean> | null = null

/**
 * Exchange the refresh token for new tokens, once at a time (in this tab and across tabs).
 * Resolves true when there are fresh tokens; false when the session is over (the tokens are
 * dropped) or the network failed (they are kept, the next request tries again).
 */
export function refreshTokens(call: RefreshCall): Promise<boolean> {
  if (!inFlight) {
    const stale = current?.refresh
    const run = async (): Promise<boolean> => {
      const stored = read()
      if (!stored) {
        setTokens(null)
        return false
      }
      if (stored.refresh !== stale && !needsRefresh(stored)) {
        setTokens(stored) // another tab refreshed already
        return true
      }
      const result = await call(stored.refresh)
      if (result.ok) {
        setTokens({ ...stored, access: result.access, refresh: result.refresh, sessionId: result.sessionId,
                    expiresAt: Date.now() + result.expiresIn * 1000 })
        return true
      }
      if (result.final) setTokens(null)
      return false
    }
    const locks = (globalThis.navigator as Navigator | undefined)?.locks
    const task: Promise<boolean> = locks ? locks.request('sfera-refresh', run).then((fresh) => fresh) : run()
    inFlight = task.finally(() => {
      inFlight = null
    })
  }
  return inFlight
}
