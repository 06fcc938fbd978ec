/**
 * Whether a call a chat message links to has ended, asked once per call and page load (a chat of many messages
 * with the same link asks once): a finished call's message says so instead of offering to join. Unknown (not
 * asked yet, or the API refused) keeps the link: the call page then says what it is.
 */
import { ref, type Ref } from 'vue'

import { api, call as request } from '@/api/client'

const known = new Map<string, Ref<boolean>>()

export function callEnded(callId: string): Ref<boolean> {
  let ended = known.get(callId)
  if (ended) return ended
  ended = ref(false)
  known.set(callId, ended)
  const answer = ended
  void request(() => api.GET('/api/v1/calls/{call_id}', { params: { path: { call_id: callId } } }))
    .then((view) => {
      answer.value = Boolean(view.ended_at)
    })
    .catch(() => undefined)
  return answer
}
