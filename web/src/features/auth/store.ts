import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

import { api, call, type Schemas } from '@/api/client'
import { getTokens, onTokens, setTokens } from '@/api/session'

export type Person = Schemas['PersonView']

/** The signed-in person: the session (api/session.ts: access token in memory, refresh token a cookie) and /me. */
export const useSession = defineStore('session', () => {
  const tokens = ref(getTokens())
  const me = ref<Person | null>(null)
  onTokens((next) => {
    if (next?.userId !== tokens.value?.userId) me.value = null
    tokens.value = next
  })

  const signedIn = computed(() => tokens.value !== null)
  const profileComplete = computed<boolean | null>(() => (me.value ? Boolean(me.value.profile_complete) : null))

  function signedInWith(s: Schemas['SignedIn']): void {
    me.value = null
    // The refresh token came as the httpOnly cookie (api/session.ts); the access token stays in memory.
    setTokens({ access: s.access_token, sessionId: s.session_id, userId: s.user_id,
                expiresAt: Date.now() + s.expires_in * 1000 })
  }

  async function loadMe(force = false): Promise<Person | null> {
    if (!signedIn.value) return null
    if (me.value && !force) return me.value
    me.value = await call(() => api.GET('/api/v1/me'))
    return me.value
  }

  /** Sign this device out: the session ends on the server too (its refresh token stops at once). */
  async function signOut(): Promise<void> {
    const current = tokens.value
    if (current) {
      await call(() => api.DELETE('/api/v1/me/sessions/{session_id}', {
        params: { path: { session_id: current.sessionId } },
      })).catch(() => undefined)
    }
    setTokens(null)
    me.value = null
  }

  return { tokens, me, signedIn, profileComplete, signedInWith, loadMe, signOut }
})
