/** Attachments: upload with progress and cancel (XMLHttpRequest: fetch reports no upload progress). */
import { refreshSession } from '@/api/client'
import { ApiError, NETWORK_FAILED, toApiError } from '@/api/errors'
import { getTokens, needsRefresh } from '@/api/session'

export type AttachmentKind = 'photo' | 'voice' | 'audio' | 'video' | 'file'

/** The kind the API files a browser's file under. */
export function kindOf(file: { type: string }, voice = false): AttachmentKind {
  if (voice) return 'voice'
  if (/^image\/(jpeg|png|gif|webp)$/.test(file.type)) return 'photo'
  if (file.type.startsWith('audio/')) return 'audio'
  if (file.type.startsWith('video/')) return 'video'
  return 'file'
}

export interface Upload<T> {
  done: Promise<T>
  cancel: () => void
}

export const CANCELLED = 'client.cancelled'

export function upload<T>(chatId: string, file: Blob, fileName: string, kind: AttachmentKind,
                          onProgress: (fraction: number) => void): Upload<T> {
  const xhr = new XMLHttpRequest()
  const done = (async () => {
    const tokens = getTokens()
    if (tokens && needsRefresh(tokens)) await refreshSession()
    return new Promise<T>((resolve, reject) => {
      xhr.open('POST', `/api/v1/chats/${encodeURIComponent(chatId)}/attachments`)
      const access = getTokens()?.access
      if (access) xhr.setRequestHeader('Authorization', `Bearer ${access}`)
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total)
      xhr.onload = () => {
        let body: unknown = null
        try {
          body = JSON.parse(xhr.responseText)
        } catch {
          body = null
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body as T)
        else reject(toApiError(xhr.status, body))
      }
      xhr.onerror = () => reject(new ApiError(0, { code: NETWORK_FAILED }))
      xhr.onabort = () => reject(new ApiError(0, { code: CANCELLED }))
      const form = new FormData()
      form.append('kind', kind)
      form.append('file', file, fileName)
      xhr.send(form)
    })
  })()
  return { done, cancel: () => xhr.abort() }
}

export function humanSize(bytes: number, locale: string): string {
  const units = ['B', 'KB', 'MB', 'GB']
  let n = bytes
  let unit = 0
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024
    unit += 1
  }
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: unit ? 1 : 0 }).format(n)} ${units[unit]}`
}
