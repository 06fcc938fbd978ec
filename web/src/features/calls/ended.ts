/**
 * What became of a call a chat message links to, asked once per call and page load (a chat of many messages with
 * the same link asks once): a finished call's message says so instead of offering to join, and so does one whose
 * admin removed the viewer (CA-3: they read the call no more, so its end is not theirs to learn either). Unknown
 * (not asked yet, or the API refused otherwise) keeps the link: the call page then says what it is.
 */
import { ref, type Ref } from 'vue'

import { api, call as request } from '@/api/client'
import { ApiError } from '@/api/errors'

export type CallFate = 'open' | 'ended' | 'removed'

const known = new Map<string, Ref<CallFate>>()

export function callFate(callId: string): Ref<CallFate> {
  let fate = known.get(callId)
  if (fate) return fate
  fate = ref<CallFate>('open')
  known.set(callId, fate)
  const answer = fate
  void request(() => api.GET('/api/v1/calls/{call_id}', { params: { path: { call_id: callId } } }))
    .then((view) => {
      answer.value = view.ended_at ? 'ended' : 'open'
    })
    .catch((e: unknown) => {
      if (e instanceof ApiError && e.code === 'call.removed') answer.value = 'removed'
    })
  return answer
}
