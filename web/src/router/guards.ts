/** Where a navigation may go: pure, so the rules are unit-tested apart from the router. */
import type { RouteLocationRaw } from 'vue-router'

export interface Destination {
  name?: string | symbol | null
  fullPath: string
  meta: { auth?: boolean; guestOnly?: boolean }
  query: Record<string, unknown>
}

export interface SessionState {
  signedIn: boolean
  /** null while not known (not signed in, or /me not loaded) */
  profileComplete: boolean | null
}

/** A redirect target from a query: only a path of this app (no other origin). */
export function safeRedirect(value: unknown): string | null {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.startsWith('/\\')
    ? value
    : null
}

export function decide(to: Destination, session: SessionState): true | RouteLocationRaw {
  if (to.meta.guestOnly && session.signedIn) {
    const back = safeRedirect(to.query.redirect)
    if (session.profileComplete === false) return { name: 'welcome', query: back ? { redirect: back } : {} }
    return back ?? { name: 'home' }
  }
  if (to.meta.auth && !session.signedIn) return { name: 'sign-in', query: { redirect: to.fullPath } }
  // ID-5: a signed-in person without a profile gives it first, on public pages too (an invite
  // page would otherwise let them join a school nameless); help stays open.
  if (session.signedIn && session.profileComplete === false && to.name !== 'welcome' && to.name !== 'help') {
    return { name: 'welcome', query: { redirect: to.fullPath } }
  }
  return true
}
