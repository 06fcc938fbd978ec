/**
 * Uploads with progress: openapi-fetch (fetch) cannot report how much of a body is sent, so
 * files go through XMLHttpRequest, with the same access token, silent refresh and error shape
 * as every other call (api/client.ts).
 */
import { refreshSession } from '@/api/client'
import { ApiError, NETWORK_FAILED, SESSION_ENDED, toApiError } from '@/api/errors'
import { getTokens, needsRefresh } from '@/api/session'

interface Answer {
  status: number
  body: unknown
}

function send(path: string, form: FormData, onProgress: (fraction: number) => void): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', path)
    const tokens = getTokens()
    if (tokens) xhr.setRequestHeader('Authorization', `Bearer ${tokens.access}`)
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total)
    }
    xhr.onload = () => {
      let body: unknown = null
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null
      } catch {
        body = null
      }
      resolve({ status: xhr.status, body })
    }
    xhr.onerror = () => reject(new ApiError(0, { code: NETWORK_FAILED }))
    xhr.onabort = () => reject(new ApiError(0, { code: NETWORK_FAILED }))
    xhr.send(form)
  })
}

/** POST a multipart form to the API, reporting the share sent (0..1); resolves with the JSON answer. */
export async function upload<T>(path: string, form: FormData, onProgress: (fraction: number) => void = () => {}):
Promise<T> {
  const before = getTokens()
  if (before && needsRefresh(before)) await refreshSession()
  let answer = await send(path, form, onProgress)
  if (answer.status === 401 && getTokens()) {
    if (!(await refreshSession())) throw new ApiError(401, { code: SESSION_ENDED })
    onProgress(0)
    answer = await send(path, form, onProgress)
  }
  if (answer.status < 200 || answer.status >= 300) throw toApiError(answer.status, answer.body)
  onProgress(1)
  return answer.body as T
}
