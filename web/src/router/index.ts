import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'

import { useSession } from '@/features/auth/store'
import { callRoutes } from '@/features/calls/routes'
import { chatRoutes } from '@/features/chats/routes'
import { schoolRoutes } from '@/features/schools/routes'

import { decide } from './guards'

declare module 'vue-router' {
  interface RouteMeta {
    auth?: boolean
    guestOnly?: boolean
    /** the i18n key of the page's title */
    title?: string
  }
}

export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'home', component: () => import('@/features/people/HomeView.vue'),
    meta: { auth: true, title: 'home.title' } },
  { path: '/sign-in', name: 'sign-in', component: () => import('@/features/auth/SignInView.vue'),
    meta: { guestOnly: true, title: 'signIn.title' } },
  { path: '/welcome', name: 'welcome', component: () => import('@/features/auth/WelcomeView.vue'),
    meta: { auth: true, title: 'welcome.title' } },
  { path: '/profile', name: 'profile', component: () => import('@/features/people/ProfileView.vue'),
    meta: { auth: true, title: 'profile.title' } },
  { path: '/help', name: 'help', component: () => import('@/features/people/HelpView.vue'),
    meta: { title: 'help.title' } },
  { path: '/invite/:token', name: 'invite', component: () => import('@/features/schools/InviteView.vue'),
    meta: { title: 'invite.title' } },
  { path: '/parent-invite/:token', name: 'parent-invite',
    component: () => import('@/features/people/ParentInviteView.vue'), meta: { auth: true, title: 'parentInvite.title' } },
  { path: '/chat-invite/:token', name: 'chat-invite', component: () => import('@/features/chats/ChatInviteView.vue'),
    meta: { title: 'chatInvite.title' } },
  { path: '/ejournal/link', name: 'ejournal-link', component: () => import('@/features/ejournal/LinkView.vue'),
    meta: { auth: true, title: 'ejournal.title' } },
  ...schoolRoutes,
  ...chatRoutes,
  ...callRoutes,
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('@/features/people/NotFoundView.vue'),
    meta: { title: 'notFound.title' } },
]

export const router = createRouter({
  history: createWebHistory(),
  routes,
  scrollBehavior: () => ({ top: 0 }),
})

router.beforeEach(async (to) => {
  const session = useSession()
  if (session.signedIn) await session.loadMe().catch(() => null)
  return decide(to, { signedIn: session.signedIn, profileComplete: session.profileComplete })
})
