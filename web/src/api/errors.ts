/** One place for the API's refusals: an error class and the message a person reads. */

export interface ErrorBody {
  code: string
  message?: string
  details?: Record<string, unknown>
}

export class ApiError extends Error {
  readonly code: string
  readonly status: number
  readonly details: Record<string, unknown>

  constructor(status: number, body: ErrorBody) {
    super(body.message || body.code)
    this.name = 'ApiError'
    this.code = body.code
    this.status = status
    this.details = body.details ?? {}
  }
}

/** Codes of failures the client itself detects (no answer from the API). */
export const NETWORK_FAILED = 'client.network_failed'
export const SESSION_ENDED = 'client.session_ended'

export function toApiError(status: number, payload: unknown): ApiError {
  const body = (payload as { error?: ErrorBody } | null)?.error
  if (body && typeof body.code === 'string') return new ApiError(status, body)
  return new ApiError(status, { code: `http.${status}`, message: '' })
}

export interface Translator {
  t: (key: string, params?: Record<string, unknown>) => string
  te: (key: string) => boolean
}

/**
 * The message for an error: the locale's message for its code (`errors.<code>` in
 * ru.json / en.json), else the API's own message, else a general one.
 */
export function errorMessage(error: unknown, i18n: Translator): string {
  if (error instanceof ApiError) {
    const key = `errors.${error.code}`
    if (i18n.te(key)) return i18n.t(key, error.details)
    if (error.message && error.message !== error.code) return error.message
  }
  return i18n.t('errors.unknown')
}
