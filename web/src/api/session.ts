/**
 * The signed-in session. No token is ever stored where scripts can read it later:
 *
 * - the refresh token is an httpOnly cookie the gateway sets on sign-in and refresh (the client
 *   asks for it with `X-Sfera-Session: cookie`) and clears on sign-out; scripts never see it;
 * - the access token lives in this module's memory only, so a reload starts without one and
 *   gets it by a silent refresh through the cookie;
 * - localStorage keeps only who is signed in on this browser (user and session ids, no secret),
 *   so a reload knows to refresh and the tabs of one browser learn of a sign-out.
 *
 * The refresh token rotates (the old one ends the session if used again), and the tabs share one
 * cookie: a refresh runs under a Web Lock across tabs, so two never present the same token.
 * Framework-free: the pinia store mirrors it.
 */

export interface Tokens {
  /** empty until the first refresh after a reload */
  access: string
  sessionId: string
  userId: string
  /** epoch ms when the access token stops being accepted (0: none yet) */
  expiresAt: number
}

interface Mark {
  userId: string
  sessionId: string
}

const KEY = 'sfera.signedIn'
/** Where tokens were kept before the cookie (a browser signed in then keeps its session once more). */
const LEGACY_KEY = 'sfera.session'
/** Refresh this long before the access token expires. */
export const REFRESH_MARGIN_MS = 30_000

type Listener = (tokens: Tokens | null) => void
const listeners = new Set<Listener>()
let legacyRefresh: string | null = null
let current: Tokens | null = restore()

function readMark(): Mark | null {
  try {
    const raw = globalThis.localStorage?.getItem(KEY)
    if (!raw) return null
    const mark = JSON.parse(raw) as Partial<Mark>
    return mark.userId && mark.sessionId ? { userId: mark.userId, sessionId: mark.sessionId } : null
  } catch {
    return null
  }
}

function writeMark(mark: Mark | null): void {
  if (mark) globalThis.localStorage?.setItem(KEY, JSON.stringify(mark))
  else globalThis.localStorage?.removeItem(KEY)
}

function unrefreshed(mark: Mark): Tokens {
  return { access: '', sessionId: mark.sessionId, userId: mark.userId, expiresAt: 0 }
}

function restore(): Tokens | null {
  try {
    const raw = globalThis.localStorage?.getItem(LEGACY_KEY)
    if (raw) {
      globalThis.localStorage?.removeItem(LEGACY_KEY)
      const old = JSON.parse(raw) as { refresh?: string; userId?: string; sessionId?: string }
      if (old.refresh && old.userId && old.sessionId) {
        legacyRefresh = old.refresh // spent on the first refresh, which moves it into the cookie
        writeMark({ userId: old.userId, sessionId: old.sessionId })
      }
    }
  } catch {
    globalThis.localStorage?.removeItem(LEGACY_KEY)
  }
  const mark = readMark()
  return mark ? unrefreshed(mark) : null
}

/** Test seam: forget the memory and read the browser's storage again, as a reload does. */
export function reloadFromStorage(): void {
  legacyRefresh = null
  current = restore()
}

export function getTokens(): Tokens | null {
  return current
}

export function setTokens(tokens: Tokens | null): void {
  current = tokens
  writeMark(tokens ? { userId: tokens.userId, sessionId: tokens.sessionId } : null)
  for (const listener of listeners) listener(tokens)
}

export function onTokens(listener: Listener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

// Another tab signed out, or signed in (perhaps as someone else): this tab follows.
globalThis.addEventListener?.('storage', (event: StorageEvent) => {
  if (event.key !== KEY && event.key !== null) return
  const mark = readMark()
  if (mark && current && mark.userId === current.userId && mark.sessionId === current.sessionId) return
  current = mark ? unrefreshed(mark) : null
  for (const listener of listeners) listener(current)
})

export function needsRefresh(tokens: Tokens, now = Date.now()): boolean {
  return !tokens.access || tokens.expiresAt - now < REFRESH_MARGIN_MS
}

/** One refresh request: by the cookie, or (once, after an upgrade) with the token kept before it. */
export type RefreshCall = (legacyRefreshToken: string | null) => Promise<
  { ok: true; access: string; sessionId: string; expiresIn: number } | { ok: false; final: boolean }
>

let inFlight: Promise<boolean> | null = null

/**
 * A new access token through the refresh cookie, once at a time (in this tab and across tabs).
 * Resolves true when there is one; false when the session is over (signed out here) or the
 * network failed (still signed in: the next request tries again).
 */
export function refreshTokens(call: RefreshCall): Promise<boolean> {
  if (!inFlight) {
    const run = async (): Promise<boolean> => {
      const mark = readMark()
      if (!mark) {
        setTokens(null) // signed out in another tab meanwhile
        return false
      }
      const legacy = legacyRefresh
      const result = await call(legacy)
      if (result.ok) {
        legacyRefresh = null
        setTokens({ access: result.access, sessionId: result.sessionId, userId: mark.userId,
                    expiresAt: Date.now() + result.expiresIn * 1000 })
        return true
      }
      if (result.final) {
        legacyRefresh = null
        setTokens(null)
      }
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
