/** The schools' pages (issue #14): find, apply, a school's page, its admins' pages, the operators' console. */
import type { RouteRecordRaw } from 'vue-router'

declare module 'vue-router' {
  interface RouteMeta {
    /** which of the admins' pages (admin.<part> in the locale files) */
    part?: string
  }
}

const MANAGE_PARTS = {
  members: () => import('./manage/MembersPart.vue'),
  invites: () => import('./manage/InvitesPart.vue'),
  requests: () => import('./manage/RequestsPart.vue'),
  classes: () => import('./manage/ClassesPart.vue'),
  documents: () => import('./manage/DocumentsPart.vue'),
  channels: () => import('./manage/ChannelsPart.vue'),
  details: () => import('./manage/DetailsPart.vue'),
}

export const schoolRoutes: RouteRecordRaw[] = [
  { path: '/schools', name: 'schools', component: () => import('./SchoolsView.vue'),
    meta: { auth: true, title: 'schools.title' } },
  { path: '/schools/apply', name: 'school-apply', component: () => import('./ApplyView.vue'),
    meta: { title: 'schools.apply.title' } },
  { path: '/schools/find', name: 'school-find', component: () => import('./FindView.vue'),
    meta: { auth: true, title: 'schools.find.title' } },
  { path: '/schools/:orgId', name: 'school', component: () => import('./SchoolView.vue'),
    meta: { auth: true, title: 'schools.page.title' } },
  { path: '/schools/:orgId/articles/:articleId', name: 'article', component: () => import('./ArticleView.vue'),
    meta: { auth: true, title: 'schools.articles.title' } },
  { path: '/schools/:orgId/editor/:articleId?', name: 'article-editor', component: () => import('./ArticleEditor.vue'),
    meta: { auth: true, title: 'schools.articles.newTitle' } },
  { path: '/schools/:orgId/channels/:channelId', name: 'channel', component: () => import('./ChannelView.vue'),
    meta: { auth: true, title: 'schools.channels.channel' } },
  { path: '/schools/:orgId/manage', component: () => import('./ManageView.vue'), meta: { auth: true },
    children: [
      { path: '', redirect: (to) => `/schools/${String(to.params.orgId)}/manage/members` },
      ...Object.entries(MANAGE_PARTS).map(([part, component]) => ({
        path: part, name: `manage-${part}`, component, meta: { auth: true, part, title: `admin.${part}.title` },
      })),
    ] },
  { path: '/sign-in/email', name: 'sign-in-email', component: () => import('@/features/auth/EmailSignInView.vue'),
    meta: { guestOnly: true, title: 'auth.email.title' } },
  { path: '/ejournal', name: 'ejournal', component: () => import('@/features/ejournal/EJournalView.vue'),
    meta: { auth: true, title: 'ejournal.linkTitle' } },
  // signed in: the link is the starting account's only (a forwarded address links no one else, EJ-1)
  { path: '/ejournal/callback', name: 'ejournal-callback', component: () => import('@/features/ejournal/CallbackView.vue'),
    meta: { auth: true, title: 'ejournal.title' } },
  { path: '/operator', name: 'operator', component: () => import('@/features/operator/OperatorView.vue'),
    meta: { auth: true, title: 'operator.title' } },
]
