/**
 * The typed API client: openapi-fetch over the types openapi-typescript generates from the
 * gateway's /openapi.json (schema.d.ts, `npm run gen:api`). `call()` adds the access token,
 * refreshes it silently (before it expires, and once after a 401), and turns every refusal
 * into an ApiError.
 */
import createClient from 'openapi-fetch'

import { ApiError, NETWORK_FAILED, SESSION_ENDED, toApiError } from './errors'
import type { paths } from './schema'
import { getTokens, needsRefresh, refreshTokens, setTokens, type RefreshCall } from './session'

const baseUrl = globalThis.location?.origin ?? ''

export const api = createClient<paths>({ baseUrl })

api.use({
  onRequest({ request }) {
    const tokens = getTokens()
    if (tokens && !request.headers.has('Authorization')) request.headers.set('Authorization', `Bearer ${tokens.access}`)
    return request
  },
})

const refreshCall: RefreshCall = async (refreshToken) => {
  try {
    const { data, response } = await createClient<paths>({ baseUrl }).POST('/api/v1/auth/refresh', {
      body: { refresh_token: refreshToken },
    })
    if (data) {
      return { ok: true, access: data.access_token, refresh: data.refresh_token, sessionId: data.session_id,
               expiresIn: data.expires_in }
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

/** Run one typed request: `await call(() => api.GET('/api/v1/me'))`. */
export async function call<T>(send: () => Promise<Result<T>>): Promise<T> {
  const before = getTokens()
  if (before && needsRefresh(before)) await refreshSession()
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
  const tokens = getTokens()
  const response = await fetch(`${baseUrl}${path}`, {
    headers: tokens ? { Authorization: `Bearer ${tokens.access}` } : {},
  }).catch((cause) => {
    throw new ApiError(0, { code: NETWORK_FAILED, message: String(cause) })
  })
  if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null))
  return URL.createObjectURL(await response.blob())
}

export type { paths }
export type Schemas = import('./schema').components['schemas']
