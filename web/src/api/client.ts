/**
 * The typed API client: openapi-fetch over the types openapi-typescript generates from the
 * gateway's /openapi.json (schema.d.ts, `npm run gen:api`). `call()` adds the access token,
 * refreshes it silently through the httpOnly refresh cookie (before it expires, after a reload,
 * and once after a 401), and turns every refusal into an ApiError. Every request says
 * `X-Sfera-Session: cookie`: sign-ins answer with the refresh token as that cookie, not in the JSON.
 */
import createClient from 'openapi-fetch'

import { ApiError, NETWORK_FAILED, SESSION_ENDED, toApiError } from './errors'
import type { paths } from './schema'
import { getTokens, needsRefresh, refreshTokens, setTokens, type RefreshCall } from './session'

const baseUrl = globalThis.location?.origin ?? ''

export const api = createClient<paths>({ baseUrl })

/** The gateway keeps this client's refresh token in an httpOnly cookie (and refreshes only with this header). */
export const SESSION_HEADER = { 'X-Sfera-Session': 'cookie' } as const

api.use({
  onRequest({ request }) {
    const tokens = getTokens()
    if (tokens?.access && !request.headers.has('Authorization')) {
      request.headers.set('Authorization', `Bearer ${tokens.access}`)
    }
    request.headers.set('X-Sfera-Session', SESSION_HEADER['X-Sfera-Session'])
    return request
  },
})

const refreshCall: RefreshCall = async (legacyRefreshToken) => {
  try {
    const { data, response } = await createClient<paths>({ baseUrl }).POST('/api/v1/auth/refresh', {
      body: legacyRefreshToken ? { refresh_token: legacyRefreshToken } : {},
      headers: SESSION_HEADER,
      credentials: 'same-origin',
    })
    if (data) {
      return { ok: true, access: data.access_token, sessionId: data.session_id, expiresIn: data.expires_in }
    }
    return { ok: false, final: response.status < 500 }
  } catch {
    return { ok: false, final: false }
  }
}

let expiredHandler: () => void = () => {}

/** What happens when the session ends under a request (the app returns to sign-in). */
export function onSessionEnded(handler: () => void): void {
  expiredHandler = handler
}

export function refreshSession(): Promise<boolean> {
  return refreshTokens(refreshCall)
}

interface Result<T> {
  data?: T
  error?: unknown
  response: Response
}

async function attempt<T>(send: () => Promise<Result<T>>): Promise<Result<T>> {
  try {
    return await send()
  } catch (cause) {
    if (cause instanceof ApiError) throw cause
    throw new ApiError(0, { code: NETWORK_FAILED, message: String(cause) })
  }
}

/**
 * A usable access token before a request when signed in: refreshed when it is about to expire or
 * missing (after a reload). Throws when the session is over (and returns the app to sign-in) or
 * when the refresh got no answer and there is no token to go on with.
 */
export async function ensureFresh(): Promise<void> {
  const before = getTokens()
  if (!before || !needsRefresh(before)) return
  if (await refreshSession()) return
  const now = getTokens()
  if (!now) {
    expiredHandler()
    throw new ApiError(401, { code: SESSION_ENDED })
  }
  if (!now.access || now.expiresAt <= Date.now()) throw new ApiError(0, { code: NETWORK_FAILED })
}

/** Run one typed request: `await call(() => api.GET('/api/v1/me'))`. */
export async function call<T>(send: () => Promise<Result<T>>): Promise<T> {
  await ensureFresh()
  let result = await attempt(send)
  if (result.response.status === 401 && getTokens()) {
    if (await refreshSession()) result = await attempt(send)
    else if (getTokens()) throw new ApiError(0, { code: NETWORK_FAILED }) // the refresh itself got no answer
    if (result.response.status === 401) {
      setTokens(null)
      expiredHandler()
      throw new ApiError(401, { code: SESSION_ENDED })
    }
  }
  if (!result.response.ok) throw toApiError(result.response.status, result.error)
  return result.data as T
}

/** A binary resource of the API (a QR code) as an object URL, with the access token. */
export async function objectUrl(path: string): Promise<string> {
  await ensureFresh()
  const tokens = getTokens()
  const response = await fetch(`${baseUrl}${path}`, {
    headers: tokens?.access ? { Authorization: `Bearer ${tokens.access}` } : {},
  }).catch((cause) => {
    throw new ApiError(0, { code: NETWORK_FAILED, message: String(cause) })
  })
  if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null))
  return URL.createObjectURL(await response.blob())
}

export type { paths }
export type Schemas = import('./schema').components['schemas']
